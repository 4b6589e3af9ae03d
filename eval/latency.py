"""How long `metallmix recommend` takes: whole CLI processes and in-process calls.

    python -m eval.latency                       # 7 warm CLI runs; writes eval/results/latency.*
    python -m eval.latency --runs 15 --store runs.sqlite --budget "one hour on a T4"

What is measured (every figure a median over `--runs`; the artifacts are warm: one unmeasured run
first fits / builds whatever the store still lacks):

cli
    `metallmix recommend --traits JSON --budget B` as a new process, from process start to exit
    (its output goes to a pipe): wall time, and the CPU time (user + system) of the process, which
    is what the machine's load does not inflate. Run through the console script next to this
    Python (`<bin>/metallmix`) and, when it differs, through the `metallmix` first on PATH (e.g.
    a pyenv shim, whose own start-up is not the project's).
in_process
    In one fresh process: `import knowledge.recommend`, the first `recommend()` (loads the saved
    meta-learner and index), then warm `recommend()` calls without a budget, "CPU only" and
    "one hour on a T4"; and which heavy libraries the recommendation path imported.

Timings are never asserted by tests (they depend on the machine and its load); this script writes
them to `eval/results/latency.json` and a Markdown fragment `eval/results/latency.md`, with the
machine and its load average.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
DEFAULT_TRAITS = '{"n_instances": 3000, "n_classes": 3, "height": 512, "modality": "x-ray"}'
DEFAULT_BUDGET = "CPU only"
HEAVY = ("xgboost", "sklearn", "scipy", "pandas", "pyarrow", "faiss", "torch", "shap",
         "matplotlib", "langchain_core", "langgraph", "gradio", "sentence_transformers")

_IN_PROCESS = r"""
import json, statistics, sys, time
started = time.perf_counter()
import knowledge.recommend as kr
imported = time.perf_counter() - started
meta = kr.meta_from_traits(json.loads(sys.argv[1]))
store = sys.argv[3] or None
t = time.perf_counter(); kr.recommend(meta, budget=sys.argv[2] or None, store=store)
first = time.perf_counter() - t
runs = int(sys.argv[4])
warm = {}
for label, budget in (("no budget", None), ("CPU only", "CPU only"),
                      ("one hour on a T4", "one hour on a T4")):
    times = []
    for _ in range(runs):
        t = time.perf_counter(); kr.recommend(meta, budget=budget, store=store)
        times.append(time.perf_counter() - t)
    warm[label] = statistics.median(times)
heavy = [m for m in json.loads(sys.argv[5]) if m in sys.modules]
print(json.dumps({"import_s": imported, "first_call_s": first, "warm_call_s": warm,
                  "heavy_modules_loaded": heavy}))
"""


def console_scripts() -> dict[str, list[str]]:
    """The ways to start the CLI that are measured: the console script of this Python, and the
    `metallmix` on PATH when it is a different file (e.g. a pyenv shim)."""
    out: dict[str, list[str]] = {}
    local = Path(sys.executable).parent / "metallmix"
    out["console script"] = [str(local)] if local.is_file() else [sys.executable, "-m", "ui.cli"]
    on_path = shutil.which("metallmix")
    if on_path and Path(on_path).resolve() != local.resolve():
        out[f"`metallmix` on PATH ({on_path})"] = [on_path]
    return out


def _child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def time_process(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one run of `command`; RuntimeError if it fails."""
    cpu = _child_cpu()
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}): "
                           f"{done.stderr.strip().splitlines()[-1:] or done.stdout[-200:]}")
    return wall, _child_cpu() - cpu


def measure_cli(command: list[str], args: list[str], runs: int, env: dict[str, str]) -> dict[str, Any]:
    """Median / min / max wall and CPU seconds of `runs` warm runs (after one unmeasured run)."""
    time_process(command + args, env)  # warm-up: fits / builds missing artifacts, fills caches
    walls, cpus = zip(*(time_process(command + args, env) for _ in range(runs)))
    return {
        "command": " ".join(command + args),
        "runs": runs,
        "wall_s": {"median": statistics.median(walls), "min": min(walls), "max": max(walls)},
        "cpu_s": {"median": statistics.median(cpus), "min": min(cpus), "max": max(cpus)},
    }


def measure_in_process(traits: str, budget: str, store: str | None, runs: int,
                       env: dict[str, str]) -> dict[str, Any]:
    """Import, first call and warm calls of `knowledge.recommend.recommend` in a new process."""
    done = subprocess.run([sys.executable, "-c", _IN_PROCESS, traits, budget, store or "",
                           str(runs), json.dumps(HEAVY)], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"in-process measurement failed: {done.stderr.strip()[-500:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def machine() -> dict[str, Any]:
    """Where the figures were taken (and how busy the machine was)."""
    return {"platform": platform.platform(), "processor": platform.processor() or None,
            "cpu_count": os.cpu_count(), "python": platform.python_version(),
            "load_average": [round(x, 2) for x in os.getloadavg()]}


def run(*, runs: int = 7, traits: str = DEFAULT_TRAITS, budget: str = DEFAULT_BUDGET,
        store: str | None = None) -> dict[str, Any]:
    """Every measurement (module doc) as a JSON-ready report."""
    env = dict(os.environ)
    args = ["recommend", "--traits", traits, "--budget", budget]
    if store:
        args += ["--store", store]
    before = machine()
    cli = {name: measure_cli(cmd, args, runs, env) for name, cmd in console_scripts().items()}
    in_process = measure_in_process(traits, budget, store, runs, env)
    return {
        "benchmark": "recommend latency",
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "traits": json.loads(traits), "budget": budget, "store": store or "default",
        "machine": before, "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "cli": cli, "in_process": in_process,
    }


def to_markdown(report: dict[str, Any]) -> str:
    """The report as a Markdown fragment (for docs/BENCHMARKS.md)."""
    m = report["machine"]
    lines = [f"Stated traits `{json.dumps(report['traits'])}`, budget \"{report['budget']}\", store "
             f"{report['store']}; meta-learner and index already saved (warm). Machine: "
             f"{m['cpu_count']} CPUs, {m['platform']}, Python {m['python']}; load average "
             f"{m['load_average'][0]} before, {report['load_average_after'][0]} after "
             f"(`python -m eval.latency`, {report['created_at']}).", "",
             "| what | median | min – max | CPU (user + sys), median |", "|---|---:|---:|---:|"]
    for name, c in report["cli"].items():
        w, cpu = c["wall_s"], c["cpu_s"]
        lines.append(f"| whole CLI `recommend` as a new process, {name} ({c['runs']} runs) | "
                     f"{w['median']:.2f} s | {w['min']:.2f} – {w['max']:.2f} s | "
                     f"{cpu['median']:.2f} s |")
    p = report["in_process"]
    lines.append(f"| `import knowledge.recommend` | {p['import_s']:.2f} s | | |")
    lines.append(f"| first `recommend()` in a new process (loads learner and index) | "
                 f"{p['first_call_s']:.2f} s | | |")
    for label, seconds in p["warm_call_s"].items():
        lines.append(f"| warm `recommend()` in a loaded process, {label} | {seconds:.2f} s | | |")
    heavy = ", ".join(p["heavy_modules_loaded"]) or "none"
    lines += ["", f"Heavy libraries the recommendation path imported: {heavy} "
                  f"(checked: {', '.join(HEAVY)})."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eval.latency", description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=7, help="measured runs per figure (median)")
    parser.add_argument("--traits", default=DEFAULT_TRAITS, help="--traits JSON of the command")
    parser.add_argument("--budget", default=DEFAULT_BUDGET, help="--budget of the command")
    parser.add_argument("--store", default=None, help="run store (default: the default store)")
    parser.add_argument("--out", type=Path, default=RESULTS / "latency.json")
    parser.add_argument("--markdown", type=Path, default=RESULTS / "latency.md")
    ns = parser.parse_args(argv)
    if ns.runs < 1:
        parser.error("--runs must be at least 1")
    report = run(runs=ns.runs, traits=ns.traits, budget=ns.budget, store=ns.store)
    for path, text in ((ns.out, json.dumps(report, indent=2) + "\n"), (ns.markdown, to_markdown(report))):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(text)
        os.replace(tmp, path)
    print(to_markdown(report))
    print(f"written to {ns.out} and {ns.markdown}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
