"""Foundation benchmark: time of `metallmix analyze` on PneumoniaMNIST and of one-epoch training runs.

    python -m eval.foundation [--data /path/to/medmnist] [--out eval/results/foundation.json]

Measures, on this machine: the wall time of `metallmix analyze pneumoniamnist.npz --json` as a fresh
process (median of N), the in-process load + meta-features time, and one-epoch runs at 28 px on
PneumoniaMNIST (4,708 training images) with all cores: resnet18 from scratch, and efficientnet_lite0 from
the offline ImageNet weights. Writes JSON with the machine description and the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from knowledge.datasets import load_dataset
from knowledge.search_space import TrainConfig
from knowledge.training import train
from knowledge.training.device import device_name


def _median_time(fn, reps: int) -> tuple[float, list[float]]:
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times


def run(data: Path, reps: int = 5) -> dict:
    npz = data / "pneumoniamnist.npz"
    if not npz.exists():
        raise SystemExit(f"error: {npz} not found (pass --data)")
    cli = [sys.executable, "-m", "ui.cli", "analyze", str(npz), "--json"]
    analyze_cli, cli_times = _median_time(lambda: subprocess.run(cli, check=True, capture_output=True), reps)

    analyze_inproc, _ = _median_time(lambda: load_dataset(npz).meta_features(), reps)

    dataset = load_dataset(npz)
    runs = []
    for model, pretrained in [("resnet18", False), ("efficientnet_lite0", True)]:
        cfg = TrainConfig(model=model, pretrained=pretrained, resolution=28, epochs=1, batch_size=64)
        t0 = time.perf_counter()
        rec = train(dataset, cfg, seed=0, num_threads=os.cpu_count())
        runs.append({
            "model": model,
            "pretrained": pretrained,
            "status": rec.status,
            "wall_s": round(time.perf_counter() - t0, 2),
            "train_seconds": rec.outcome.train_seconds,
            "val_acc": rec.outcome.val_acc,
            "test_acc": rec.outcome.test_acc,
            "test_auc": rec.outcome.test_auc,
        })
    return {
        "machine": {
            "device": device_name(torch.device("cpu")),
            "cores": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        },
        "analyze_pneumoniamnist": {
            "cli_wall_s_median": round(analyze_cli, 3),
            "cli_wall_s_all": [round(t, 3) for t in cli_times],
            "in_process_s_median": round(analyze_inproc, 4),
        },
        "one_epoch_28px_pneumoniamnist": runs,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    here = Path(__file__).resolve().parent
    parser.add_argument("--data", type=Path, default=here.parents[1] / "shared" / "data" / "medmnist")
    parser.add_argument("--out", type=Path, default=here / "results" / "foundation.json")
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    result = run(args.data, args.reps)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
