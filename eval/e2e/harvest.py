"""Copy the end-to-end benchmark's own runs into a run store as timing evidence (runs on all cores).

    python -m eval.e2e.harvest --from E2E_STORE --to STORE [--threads-if-missing N] [--dry-run]

The benchmark trains its arms and its searches' trials on all the machine's cores (the launcher's
default, which is how a user trains), while the CPU campaign (sweeps, portfolio) trained on one
thread per process. Its runs are real runs on real datasets; copied into the meta-dataset they teach
the CPU time model what a second thread buys per architecture (`knowledge.metalearner.cputime`).

Each `e2e:<dataset>:<arm>` record is copied with a new deterministic run id and the study
`e2e-harvest:<dataset>:<arm>` (the benchmark ignores its own `e2e:` runs as evidence; the copies
are timing evidence only: `knowledge.metalearner.targets.TIMING_ONLY_STUDIES`). Records made before runs stored their threads get
`--threads-if-missing` (the e2e units record the count each unit trained with: `threads` in
`<state>/<dataset>/*.json`). Copying twice adds nothing (same ids).
"""

from __future__ import annotations

import argparse
import logging
from collections import Counter

from eval.e2e.arms import STUDY_PREFIX, is_benchmark_run
from knowledge.runs.record import RunRecord
from knowledge.runs.store import RunStore

HARVEST_PREFIX = "e2e-harvest"
log = logging.getLogger(__name__)


def harvested(record: RunRecord, threads_if_missing: int | None) -> RunRecord:
    """The timing-evidence copy of one benchmark run (new id and study; threads filled when missing)."""
    prov = record.provenance
    study = str(prov.study or "")
    if not is_benchmark_run(study):
        raise ValueError(f"run {record.run_id} is not a benchmark run (study {study!r})")
    threads = prov.threads
    if threads is None and record.outcome.train_seconds is not None and threads_if_missing is None:
        raise ValueError(f"run {record.run_id} records no threads: give --threads-if-missing")
    threads = threads if threads is not None else threads_if_missing
    new_study = HARVEST_PREFIX + study[len(STUDY_PREFIX):]
    return record.model_copy(update={
        "run_id": RunRecord.stable_id(HARVEST_PREFIX, record.run_id),
        "provenance": prov.model_copy(update={"study": new_study, "threads": threads}),
    })


def harvest(source: RunStore, target: RunStore, *, threads_if_missing: int | None,
            dry_run: bool = False) -> Counter:
    """Copy every benchmark run of `source` into `target`; counts by (base dataset, status)."""
    copies = [harvested(r, threads_if_missing) for r in source.query()
              if is_benchmark_run(r.provenance.study)]
    if not dry_run:
        target.add_many(copies)
    return Counter((r.base_dataset, r.status) for r in copies)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--from", dest="source", required=True, help="the benchmark's run store")
    parser.add_argument("--to", dest="target", required=True, help="the run store to add them to")
    parser.add_argument("--threads-if-missing", type=int, default=None)
    parser.add_argument("--dry-run", action="store_true")
    args = parser.parse_args(argv)
    if args.threads_if_missing is not None and args.threads_if_missing < 1:
        parser.error("--threads-if-missing must be at least 1")
    counts = harvest(RunStore(args.source), RunStore(args.target),
                     threads_if_missing=args.threads_if_missing, dry_run=args.dry_run)
    for (base, status), n in sorted(counts.items()):
        print(f"{base:16s} {status:9s} {n}")
    print(f"{sum(counts.values())} run(s) {'would be ' if args.dry_run else ''}copied to {args.target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
