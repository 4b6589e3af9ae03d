"""A fixed portfolio of configs, trained on every dataset of a plan: the evidence the ranking picks from.

MedMNIST+ ran the same 120 configs on every dataset, so any pick among them has a recorded outcome on
every published dataset. Our own TPE sweeps drew different configs per dataset, so a config recorded on
one variant was rarely recorded on another. A portfolio closes that gap: the configs of
`knowledge/data/cpu_portfolio.json` are trained on each source that lacks them (resumable: a
(dataset, config) pair with a record in the store - ok, timeout or failed, not cancelled - is done).

    run_portfolio(DEFAULT_PLAN, load_portfolio(), store_path=..., time_budget_s=120)
    metallmix portfolio [SOURCE ...] [--configs FILE] [--trial-budget S]   # the same from the CLI
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from knowledge import paths
from knowledge.errors import ConfigError
from knowledge.meta_dataset.shipped import open_store
from knowledge.metalearner.targets import is_timing_only
from knowledge.search_space import TrainConfig, validate_config
from knowledge.sweeps.backend import REAL, Backend

log = logging.getLogger(__name__)

PORTFOLIO_FILE = paths.PACKAGE_DATA / "cpu_portfolio.json"
STUDY_TAG = "portfolio"
MAX_FILE_BYTES = 1_000_000


def load_portfolio(path: str | Path | None = None) -> list[TrainConfig]:
    """The portfolio's configs (validated; ConfigError naming the file and the entry)."""
    file = Path(path) if path is not None else PORTFOLIO_FILE
    try:
        if file.stat().st_size > MAX_FILE_BYTES:
            raise ConfigError(f"{file}: portfolio file larger than {MAX_FILE_BYTES:,} bytes")
        data = json.loads(file.read_text())
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read the portfolio: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise ConfigError(f"{file}: not JSON: {exc}") from None
    entries = data.get("configs") if isinstance(data, dict) else data
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{file}: expected a non-empty list of configs (or {{\"configs\": [...]}})")
    out: list[TrainConfig] = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise ConfigError(f"{file}: config {i}: expected an object, got {type(entry).__name__}")
        try:
            out.append(validate_config(entry))
        except ConfigError as exc:
            raise ConfigError(f"{file}: config {i}: {exc}") from None
    return list(dict.fromkeys(out))


def done_pairs(store: Any, dataset_ids: Iterable[str], *, redo_timeouts_under: float | None = None
               ) -> set[tuple[str, str]]:
    """(dataset_id, config key) of every record of these datasets in the store, whatever its
    status - except `cancelled` (stopped by the user: trained again on the next run), timing-only
    records (`TIMING_ONLY_STUDIES`: not accuracy evidence) and, with
    `redo_timeouts_under`, a `timeout` that trained less than 95 % of that many seconds (the
    pair is trained again with the longer budget: a time limit censors long configs)."""
    out: set[tuple[str, str]] = set()
    for dataset_id in dataset_ids:
        for record in store.query(dataset_id=dataset_id):
            if record.status == "cancelled" or is_timing_only(record.provenance.study):
                continue
            if (redo_timeouts_under is not None and record.status == "timeout"
                    and (record.outcome.train_seconds or 0.0) < 0.95 * redo_timeouts_under):
                continue
            out.add((record.dataset_id, record.config.key()))
    return out


@dataclass
class PortfolioReport:
    """What `run_portfolio` did: runs trained now, pairs already recorded, statuses."""

    trained: int = 0
    skipped: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)


def run_portfolio(
    sources: Sequence[str],
    configs: Sequence[TrainConfig],
    *,
    store_path: str | Path | None = None,
    time_budget_s: float | None = 120.0,
    num_threads: int | None = 1,
    seed: int = 0,
    backend: Backend = REAL,
    progress: bool = True,
    on_run: Callable[[str, TrainConfig, Any], None] | None = None,
    only: Sequence[int] | None = None,
    redo_timeouts: bool = False,
) -> PortfolioReport:
    """Train every portfolio config on every source that has no record of it yet (resumable).

    Each run is stored with `provenance.study = 'metallmix:<dataset id>:portfolio#<i>'` (i: the
    config's index in the portfolio). A source that cannot be loaded raises (nothing is trained).
    `only`: these indices of the portfolio; `redo_timeouts`: also the pairs recorded only as
    timeouts shorter than `time_budget_s` (`done_pairs`)."""
    from tqdm import tqdm

    if not sources:
        raise ConfigError("no sources given")
    if not configs:
        raise ConfigError("the portfolio is empty")
    if time_budget_s is not None and not 0 < time_budget_s < float("inf"):
        raise ConfigError(f"--trial-budget {time_budget_s:g}: must be a positive, finite number of seconds")
    bad = sorted(set(only or ()) - set(range(len(configs))))
    if bad:
        raise ConfigError(f"--only {bad}: the portfolio has configs 0 to {len(configs) - 1}")
    if redo_timeouts and time_budget_s is None:
        raise ConfigError("redoing timeouts needs a trial budget longer than theirs")
    store = open_store(store_path)
    loaded = {spec: backend.load_dataset(spec) for spec in sources}
    done = done_pairs(store, [d.id for d in loaded.values()],
                      redo_timeouts_under=time_budget_s if redo_timeouts else None)
    chosen = sorted(set(only)) if only is not None else list(range(len(configs)))
    todo = [(spec, i, configs[i]) for spec, ds in loaded.items() for i in chosen
            if (ds.id, configs[i].key()) not in done]
    report = PortfolioReport(skipped=len(sources) * len(chosen) - len(todo), sources=list(sources))
    log.info("portfolio: %d runs to train, %d already recorded", len(todo), report.skipped)
    bar = tqdm(todo, desc="portfolio", unit="run", disable=not progress)
    for spec, i, cfg in bar:
        dataset = loaded[spec]
        bar.set_postfix_str(f"{dataset.id[:40]} #{i}")
        record = backend.train(dataset, cfg, seed=seed, time_budget_s=time_budget_s,
                               num_threads=num_threads, store=store,
                               study=f"metallmix:{dataset.id}:{STUDY_TAG}#{i}")
        report.trained += 1
        report.statuses[record.status] = report.statuses.get(record.status, 0) + 1
        if on_run is not None:
            on_run(spec, cfg, record)
    return report
