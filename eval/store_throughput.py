"""Throughput of the shared sweep machinery on this machine: SQLite files vs a PostgreSQL server.

    python -m eval.store_throughput --out eval/results/store_throughput.json \\
        --markdown eval/results/store_throughput.md
    python -m eval.store_throughput --smoke          # seconds: 5 trials, 1 and 2 workers
    metallmix eval store-throughput --smoke           # the same

Two measurements, each on SQLite (files in a temp folder) and on PostgreSQL (a throwaway server
started here, `eval.pg_server`, one fresh database per configuration):

1. Sweep throughput, trials per hour, with 1, 2 and 4 workers (`run_sweep(..., workers=w)`: the
   code path of `metallmix sweep` - Optuna study with heartbeats, admission against the trial count,
   sampler, run store - except that training is a stub: `--trial-seconds` of sleep (default 0), a
   constant accuracy, one run record). `trials_per_hour` counts the whole call (worker start-up
   included); `steady_trials_per_hour` the span from the first trial's start to the last trial's end
   (Optuna's timestamps). With 0 s trials this is the storage's ceiling, not a training forecast.
2. Run store writes, records per second: `RunStore.add` one record per transaction, and `add_many`
   in batches of `--batch`, by 1 and 4 concurrent writer processes (each with its own records,
   started together behind a barrier; throughput = all records / the span from the first start to
   the last end).

The PostgreSQL server is a throwaway one with durability off (fsync, synchronous_commit and
full_page_writes off, as in the tests): a production server commits more slowly. Machine facts (CPUs,
load average before and after) are in the report: a busy machine slows every number.
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing as mp
import os
import platform
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

RESULTS = Path(__file__).resolve().parent / "results"
BACKENDS = ("sqlite", "postgres")
DATASET = "bench:tiny"


# --- the stub backend (top-level functions: spawned workers import them) -------------------------
def bench_load(spec: str) -> Any:
    """A tiny random dataset (any spec)."""
    from knowledge.datasets.base import ImageDataset, Split

    rng = np.random.default_rng(0)
    x = rng.integers(0, 255, size=(40, 8, 8, 1), dtype=np.uint8)
    y = np.arange(40) % 2
    return ImageDataset(id=spec, base=spec.split(":", 1)[-1], train=Split(x, y),
                        val=Split(x[:10], y[:10]), medical=False, modality="other")


_META: dict[str, Any] = {}  # meta-features per dataset id, computed once per process


def _meta_features(dataset: Any) -> Any:
    if dataset.id not in _META:
        _META[dataset.id] = dataset.meta_features()
    return _META[dataset.id]


def bench_train(dataset: Any, config: Any, *, seed: int = 0, time_budget_s: Any = None,
                num_threads: Any = None, progress: Any = None, cancel: Any = None, store: Any = None,
                study: str | None = None) -> Any:
    """Sleep `METALLMIX_BENCH_TRIAL_S` seconds, then store and return an ok run record."""
    from knowledge.runs.record import Outcome, Provenance, RunRecord

    time.sleep(float(os.environ.get("METALLMIX_BENCH_TRIAL_S", "0")))
    record = RunRecord(
        dataset_id=dataset.id, base_dataset=dataset.base, medical=dataset.medical,
        meta_features=_meta_features(dataset), config=config,
        outcome=Outcome(val_acc=0.5 + 0.1 * (hash(config.model) % 3), train_seconds=0.01),
        status="ok", provenance=Provenance(source="own", seed=seed, study=study, device="bench"),
    )
    if store is not None:
        store.add(record)
    return record


def bench_pretrained(model: str) -> bool:
    return False


def _backend() -> Any:
    from knowledge.sweeps.backend import Backend

    return Backend(load_dataset=bench_load, train=bench_train, pretrained_available=bench_pretrained)


# --- where the data goes -------------------------------------------------------------------------
class Targets:
    """Fresh storage / store locations per configuration: SQLite files, or PostgreSQL databases."""

    def __init__(self, folder: Path, pg_url: str | None) -> None:
        self.folder, self.pg_url, self._n = folder, pg_url, 0

    def fresh(self, backend: str) -> tuple[str, str]:
        """(Optuna storage URL, run store path or URL), empty."""
        self._n += 1
        if backend == "sqlite":
            sub = self.folder / f"c{self._n}"
            sub.mkdir()
            return f"sqlite:///{sub / 'sweeps.sqlite'}", str(sub / "runs.sqlite")
        from eval.pg_server import fresh_database

        assert self.pg_url is not None
        url = fresh_database(self.pg_url, f"bench_{self._n}")
        return url, url


# --- 1. sweeps -------------------------------------------------------------------------------------
def sweep_case(targets: Targets, backend: str, workers: int, trials: int) -> dict[str, Any]:
    import optuna
    from optuna.trial import TrialState

    from knowledge.search_space import CPU_SPACE
    from knowledge.sweeps import run_sweep
    from knowledge.sweeps.study import open_storage

    storage, store = targets.fresh(backend)
    started = time.perf_counter()
    report = run_sweep([DATASET], trials=trials, sampler="random", workers=workers, space=CPU_SPACE,
                       storage=storage, store_path=store, progress=False, backend=_backend(),
                       trial_time_budget_s=None)
    seconds = time.perf_counter() - started
    study = optuna.load_study(study_name=report.sources[0].study, storage=open_storage(storage))
    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    first = min(t.datetime_start for t in done)
    last = max(t.datetime_complete for t in done)
    span = max((last - first).total_seconds(), 1e-6)
    return {
        "backend": backend, "workers": workers, "trials": len(done), "seconds": round(seconds, 3),
        "trials_per_hour": round(len(done) / seconds * 3600),
        "steady_seconds": round(span, 3), "steady_trials_per_hour": round(len(done) / span * 3600),
        "all_trials": len(study.trials),  # includes trials skipped at the count (a race, rare)
    }


# --- 2. store writes -------------------------------------------------------------------------------
def _records(n: int, writer: int) -> list[Any]:
    from knowledge.runs.record import Outcome, Provenance, RunRecord
    from knowledge.search_space import CPU_SPACE, TrainConfig

    dataset = bench_load(DATASET)
    mf = dataset.meta_features()
    rng = np.random.default_rng(writer)
    models = CPU_SPACE.params["model"].choices
    out = []
    for i in range(n):
        config = TrainConfig(model=models[i % len(models)], pretrained=False,
                             lr=float(10 ** -rng.uniform(2, 4)))
        out.append(RunRecord(
            dataset_id=dataset.id, base_dataset=dataset.base, medical=False, meta_features=mf,
            config=config, outcome=Outcome(val_acc=float(rng.uniform(0.5, 0.9)), train_seconds=1.0),
            status="ok", provenance=Provenance(source="own", seed=i, study=f"bench#{writer}-{i}",
                                               device="bench"),
        ))
    return out


def _writer(store: str, mode: str, n: int, batch: int, writer: int, barrier: Any, results: Any) -> None:
    from knowledge.runs.store import RunStore

    try:
        records = _records(n, writer)
        target = RunStore(store)
        target.count()  # connect before the clock starts
        barrier.wait(timeout=120)
        start = time.time()
        if mode == "add":
            for record in records:
                target.add(record)
        else:
            for i in range(0, n, batch):
                target.add_many(records[i:i + batch])
        results.put((writer, start, time.time(), None))
    except Exception as exc:  # noqa: BLE001 - reported to the parent
        results.put((writer, 0.0, 0.0, f"{type(exc).__name__}: {exc}"))


def write_case(targets: Targets, backend: str, mode: str, writers: int, n: int,
               batch: int) -> dict[str, Any]:
    from knowledge.runs.store import RunStore

    _, store = targets.fresh(backend)
    RunStore(store).count()  # create the schema once, outside the clock
    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(writers), ctx.Queue()
    procs = [ctx.Process(target=_writer, args=(store, mode, n, batch, w, barrier, results))
             for w in range(writers)]
    for proc in procs:
        proc.start()
    got = [results.get(timeout=600) for _ in procs]
    for proc in procs:
        proc.join(timeout=60)
    errors = [e for *_, e in got if e]
    if errors:
        raise RuntimeError(f"writer failed: {errors[0]}")
    span = max(end for _, _, end, _ in got) - min(start for _, start, _, _ in got)
    stored = RunStore(store).count()
    total = n * writers
    return {"backend": backend, "mode": mode, "batch": batch if mode == "add_many" else 1,
            "writers": writers, "records": total, "stored": stored, "seconds": round(span, 3),
            "records_per_s": round(total / max(span, 1e-6), 1)}


# --- the whole benchmark -------------------------------------------------------------------------
def machine_info() -> dict[str, Any]:
    import optuna
    import sqlalchemy

    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    info: dict[str, Any] = {
        "host": platform.node(), "platform": platform.platform(), "python": sys.version.split()[0],
        "cpu_count": os.cpu_count(), "cpus_usable": affinity, "optuna": optuna.__version__,
        "sqlalchemy": sqlalchemy.__version__,
    }
    from importlib.metadata import PackageNotFoundError, version

    try:
        info["psycopg"] = version("psycopg")
    except PackageNotFoundError:
        info["psycopg"] = None
    return info


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else []


@contextmanager
def _server(enabled: bool) -> Iterator[tuple[str | None, str | None]]:
    """(URL, None) of a throwaway PostgreSQL server, or (None, why not)."""
    if not enabled:
        yield None, "not requested"
        return
    from eval.pg_server import ServerUnavailable, postgres_server

    with ExitStack() as stack:
        try:
            url = stack.enter_context(postgres_server(max_connections=200))
        except (ServerUnavailable, OSError) as exc:
            yield None, str(exc)
            return
        yield url, None


def server_version(url: str) -> str | None:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return str(conn.execute(text("SHOW server_version")).scalar())
    finally:
        engine.dispose()


def run(*, backends: Sequence[str], workers: Sequence[int], trials: int, writers: Sequence[int],
        records: int, batch_records: int, batch: int, trial_seconds: float,
        progress: bool = True) -> dict[str, Any]:
    """Every configuration; the report as a dict (what `--out` writes)."""
    old = os.environ.get("METALLMIX_BENCH_TRIAL_S")
    os.environ["METALLMIX_BENCH_TRIAL_S"] = str(trial_seconds)  # read by spawned workers too
    try:
        return _run(backends=backends, workers=workers, trials=trials, writers=writers,
                    records=records, batch_records=batch_records, batch=batch,
                    trial_seconds=trial_seconds, progress=progress)
    finally:
        if old is None:
            os.environ.pop("METALLMIX_BENCH_TRIAL_S", None)
        else:
            os.environ["METALLMIX_BENCH_TRIAL_S"] = old


def _run(*, backends: Sequence[str], workers: Sequence[int], trials: int, writers: Sequence[int],
         records: int, batch_records: int, batch: int, trial_seconds: float,
         progress: bool) -> dict[str, Any]:
    from tqdm import tqdm

    result: dict[str, Any] = {"machine": machine_info(), "load_before": _load(),
                              "settings": {"trials": trials, "workers": list(workers),
                                           "writers": list(writers), "records_single": records,
                                           "records_batched": batch_records, "batch": batch,
                                           "trial_seconds": trial_seconds},
                              "sweeps": [], "writes": [], "skipped": {}}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="metallmix-bench-") as tmp, \
            _server("postgres" in backends) as (pg_url, why):
        used = [b for b in backends if b != "postgres" or pg_url]
        if "postgres" in backends and not pg_url:
            result["skipped"]["postgres"] = why
        if pg_url:
            result["machine"]["postgresql"] = server_version(pg_url)
        targets = Targets(Path(tmp), pg_url)
        cases: list[tuple[str, tuple[Any, ...]]] = [("sweep", (b, w)) for b in used for w in workers]
        cases += [("write", (b, mode, k)) for b in used for mode in ("add", "add_many") for k in writers]
        for kind, args in tqdm(cases, desc="store throughput", disable=not progress, file=sys.stderr):
            if kind == "sweep":
                row = sweep_case(targets, args[0], args[1], trials)
                result["sweeps"].append(row)
            else:
                backend, mode, k = args
                n = records if mode == "add" else batch_records
                row = write_case(targets, backend, mode, k, n, batch)
                result["writes"].append(row)
            log.info("%s %s: %s", kind, args, row)
    result["load_after"] = _load()
    result["seconds"] = round(time.perf_counter() - started, 1)
    return result


def to_markdown(result: dict[str, Any]) -> str:
    m = result["machine"]
    lines = [
        "# Store throughput: SQLite vs PostgreSQL",
        "",
        f"Machine: {m['host']} ({m['platform']}), {m['cpu_count']} CPUs ({m['cpus_usable']} usable), "
        f"Python {m['python']}, Optuna {m['optuna']}, SQLAlchemy {m['sqlalchemy']}, psycopg "
        f"{m.get('psycopg')}, PostgreSQL {m.get('postgresql', '-')} (throwaway server, fsync off). "
        f"Load average before {result['load_before']}, after {result['load_after']}; "
        f"{result['seconds']} s in all.",
        "",
        f"## Sweeps (stub trials of {result['settings']['trial_seconds']} s; "
        f"{result['settings']['trials']} trials per configuration)",
        "",
        "| storage | workers | trials | seconds | trials/hour | steady trials/hour |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in result["sweeps"]:
        lines.append(f"| {r['backend']} | {r['workers']} | {r['trials']} | {r['seconds']:.1f} | "
                     f"{r['trials_per_hour']:,} | {r['steady_trials_per_hour']:,} |")
    lines += ["", "## Run store writes", "",
              "| store | mode | batch | writers | records | seconds | records/s |",
              "|---|---|---:|---:|---:|---:|---:|"]
    for r in result["writes"]:
        lines.append(f"| {r['backend']} | {r['mode']} | {r['batch']} | {r['writers']} | {r['records']} | "
                     f"{r['seconds']:.2f} | {r['records_per_s']:,} |")
    for backend, why in result["skipped"].items():
        lines += ["", f"{backend}: skipped ({why})."]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eval.store_throughput",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=None, help="JSON report (default: none)")
    parser.add_argument("--markdown", type=Path, default=None, help="Markdown report")
    parser.add_argument("--smoke", action="store_true",
                        help="a few seconds: 5 trials with 1 and 2 workers, 20 records, 1 writer")
    parser.add_argument("--backends", default=",".join(BACKENDS), help="sqlite,postgres")
    parser.add_argument("--workers", default="1,2,4", help="sweep workers per configuration")
    parser.add_argument("--trials", type=int, default=40, help="trials per sweep configuration")
    parser.add_argument("--trial-seconds", type=float, default=0.0, help="stub training time")
    parser.add_argument("--writers", default="1,4", help="concurrent store writer processes")
    parser.add_argument("--records", type=int, default=300, help="records per writer, single adds")
    parser.add_argument("--batch-records", type=int, default=2000, help="records per writer, add_many")
    parser.add_argument("--batch", type=int, default=100, help="records per add_many call")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    def ints(text: str) -> list[int]:
        return [int(x) for x in text.split(",") if x.strip()]

    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = set(backends) - set(BACKENDS)
    if unknown:
        parser.error(f"--backends: unknown {sorted(unknown)}; known: {', '.join(BACKENDS)}")
    if args.smoke:
        settings = dict(workers=[1, 2], trials=5, writers=[1], records=20, batch_records=40, batch=20)
    else:
        settings = dict(workers=ints(args.workers), trials=args.trials, writers=ints(args.writers),
                        records=args.records, batch_records=args.batch_records, batch=args.batch)
    result = run(backends=backends, trial_seconds=args.trial_seconds, progress=not args.no_progress,
                 **settings)
    result["smoke"], text = bool(args.smoke), to_markdown(result)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
