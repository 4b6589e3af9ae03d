"""The state directory of a time-to-match run: what is done survives a crash, a stop or a reboot.

    <state dir>/settings.json                  the settings every unit was run with
    <state dir>/<dataset slug>/plan.json        fit summary, recommendation, chosen config
    <state dir>/<dataset slug>/<arm>-s<seed>.json   one finished training run (recommended,
                                                default, finetune)
    <state dir>/<dataset slug>/<sampler>-s<seed>.sqlite  the Optuna storage of a search
    <state dir>/<dataset slug>/<sampler>-s<seed>.json    the search, once it is finished

Each JSON file is written atomically once its unit has finished, so a unit is either done or not
started; a rerun skips the done ones. A search in progress resumes from the finished trials in its
SQLite storage (the trial in flight is lost). The settings file guards against mixing units run
with different settings (another budget, another search space) in one report; what a plan was made
with (the run store's evidence, the meta-learner's definition) is recorded in the plan, and a plan
made otherwise is made again (`timematch`).
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

from eval.e2e.report import atomic_write
from knowledge.errors import ConfigError, StoreError

SETTINGS_FILE = "settings.json"
PLAN_FILE = "plan.json"
# recorded per plan (a plan made otherwise is made again), once recorded in the settings file
PER_PLAN_KEYS = ("learner",)


def slug(dataset_id: str) -> str:
    """A folder name for a dataset id: readable part + a short hash (ids may hold '?', '/', ':')."""
    readable = re.sub(r"[^A-Za-z0-9._-]+", "_", dataset_id).strip("_")[:60] or "dataset"
    return f"{readable}-{hashlib.sha1(dataset_id.encode()).hexdigest()[:8]}"


def read_json(path: Path) -> dict[str, Any] | None:
    """The JSON object in `path`, None when the file does not exist; StoreError when unreadable."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise StoreError(f"{path}: cannot read the e2e state file: {exc}") from None


def write_json_file(path: Path, data: dict[str, Any]) -> None:
    text = json.dumps(data, indent=2, default=str) + "\n"
    atomic_write(path, lambda fh: fh.write(text.encode()))


class StateDir:
    """One folder per dataset, one file per finished unit (module doc)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser()

    def check_settings(self, settings: dict[str, Any]) -> None:
        """Record `settings` on first use; ConfigError when the folder holds units of others.
        Keys of `PER_PLAN_KEYS` in an older settings file are not compared (`legacy`)."""
        path = self.root / SETTINGS_FILE
        stored = read_json(path)
        normal = json.loads(json.dumps(settings, default=str))
        if stored is None:
            write_json_file(path, normal)
            return
        stored = {k: v for k, v in stored.items() if k not in PER_PLAN_KEYS}
        diff = sorted(k for k in set(stored) | set(normal) if stored.get(k) != normal.get(k))
        if diff:
            detail = "; ".join(f"{k}: {stored.get(k)!r} there, {normal.get(k)!r} now" for k in diff)
            raise ConfigError(f"the state dir {self.root} holds runs made with other settings "
                              f"({detail}); use another --state-dir, or the same settings")

    def legacy(self, key: str) -> Any:
        """A per-plan key (`PER_PLAN_KEYS`) as an older settings file recorded it for every plan of
        the folder; None when it does not."""
        return (read_json(self.root / SETTINGS_FILE) or {}).get(key)

    def folder(self, dataset_id: str) -> Path:
        return self.root / slug(dataset_id)

    def unit_path(self, dataset_id: str, unit: str) -> Path:
        return self.folder(dataset_id) / f"{unit}.json"

    def load(self, dataset_id: str, unit: str) -> dict[str, Any] | None:
        """A finished unit ('plan', 'recommended-s0', 'tpe-s1', ...), None when not done."""
        return read_json(self.unit_path(dataset_id, unit))

    def save(self, dataset_id: str, unit: str, data: dict[str, Any]) -> None:
        write_json_file(self.unit_path(dataset_id, unit), data)

    def storage_url(self, dataset_id: str, unit: str) -> str:
        """The SQLite URL of a search's Optuna storage."""
        path = (self.folder(dataset_id) / f"{unit}.sqlite").resolve()
        path.parent.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{path}"

    def plans(self) -> list[dict[str, Any]]:
        """Every dataset planned in this folder, in the order they were first planned."""
        out = []
        for path in sorted(self.root.glob(f"*/{PLAN_FILE}")):
            plan = read_json(path)
            if plan is not None:
                out.append(plan)
        return sorted(out, key=lambda p: (p.get("planned_at", ""), p.get("dataset", "")))
