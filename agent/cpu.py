"""How many CPU cores are free for llama.cpp right now, and so how many threads it should use.

    free_cores()        # e.g. 1 on a 2-core laptop while another program keeps one core busy
    llama_threads()     # METALLMIX_THREADS / --threads when set, else free_cores()

Why: llama.cpp's threads wait for each other at every layer. With as many threads as cores while
another program keeps one core busy, one llama.cpp thread only gets part of its core and the
other thread waits for it at every barrier: on a 2-core machine 2 threads with one competing
CPU-bound process generated several times slower than 1 thread (numbers: `eval/turn_speed.py
--threads-bench`, `eval/results/turn_speed.json`). So the rule is

    threads = max(1, cores - round(busy))

`cores`: the CPUs this process may run on (`os.sched_getaffinity`, else `os.cpu_count()`);
`busy`: how many cores the OTHER processes keep busy, measured over a short window (default
0.3 s) from `/proc/stat` (those CPUs only) minus this process's own CPU time in the window (so a
llama.cpp server already running here does not count against itself); where `/proc/stat` is
missing (macOS, Windows) the 1-minute load average stands in for it (it includes this process).
`round` is round-half-up: a core busy half the time counts as busy.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Sequence
from pathlib import Path

PROC_STAT = Path("/proc/stat")


def cpu_count() -> int:
    """The CPUs this process may run on (its affinity mask where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _allowed_cpus() -> set[int] | None:
    try:
        return set(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return None


def parse_proc_stat(text: str, cpus: set[int] | None = None) -> tuple[float, float]:
    """(busy, total) jiffies summed over the `cpuN` lines of `/proc/stat` text (only the CPUs in
    `cpus` when given; the aggregate `cpu` line when no `cpuN` line matches). Idle and iowait are
    not busy; guest time is already inside user time, so it is not added again."""
    lines: list[list[str]] = []
    total_line: list[str] | None = None
    for line in text.splitlines():
        if not line.startswith("cpu"):
            continue
        parts = line.split()
        name = parts[0]
        if name == "cpu":
            total_line = parts
        elif name[3:].isdigit() and (cpus is None or int(name[3:]) in cpus):
            lines.append(parts)
    if not lines and total_line is not None:
        lines = [total_line]
    busy = total = 0.0
    for parts in lines:
        fields = [float(v) for v in parts[1:9]]  # user nice system idle iowait irq softirq steal
        fields += [0.0] * (8 - len(fields))
        idle = fields[3] + fields[4]
        total += sum(fields)
        busy += sum(fields) - idle
    return busy, total


def _own_cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system


def busy_cores(interval: float = 0.3, *, stat_path: Path = PROC_STAT, sleep=time.sleep,
               cpus: set[int] | None = None) -> float | None:
    """How many of this process's CPUs (or of `cpus`) OTHER processes kept busy during the next
    `interval` seconds (e.g. 1.0 with one CPU-bound program running), or None without
    `/proc/stat`."""
    cpus = cpus if cpus is not None else _allowed_cpus()
    try:
        busy0, total0 = parse_proc_stat(stat_path.read_text(), cpus)
        own0, t0 = _own_cpu_seconds(), time.monotonic()
        sleep(interval)
        busy1, total1 = parse_proc_stat(stat_path.read_text(), cpus)
        own1, t1 = _own_cpu_seconds(), time.monotonic()
    except OSError:
        return None
    if total1 <= total0:
        return None
    n = len(cpus) if cpus else cpu_count()
    all_busy = n * (busy1 - busy0) / (total1 - total0)  # cores busy, all processes
    own = (own1 - own0) / max(t1 - t0, interval, 1e-3)  # cores this process used
    return max(0.0, all_busy - own)


def threads_for(cores: int, busy: float) -> int:
    """The rule: max(1, cores - round-half-up(busy))."""
    return max(1, cores - int(math.floor(busy + 0.5)))


def free_cores(interval: float = 0.3, *, cores: int | None = None,
               busy: float | None = None) -> int:
    """The number of llama.cpp threads for this machine now: `threads_for(cores, busy)` with
    `busy` measured by `busy_cores(interval)` (the load average where that is unavailable)."""
    cores = cpu_count() if cores is None else cores
    if busy is None:
        busy = busy_cores(interval)
    if busy is None:
        try:
            busy = os.getloadavg()[0]
        except (AttributeError, OSError):
            busy = 0.0
    return threads_for(cores, busy)


def llama_threads(configured: int | None, interval: float = 0.3) -> int:
    """`configured` (METALLMIX_THREADS, `--threads`) when set, else `free_cores()`."""
    return configured if configured else free_cores(interval)


def load_average() -> Sequence[float] | None:
    """The 1, 5 and 15-minute load averages (None where the OS has none), for reports."""
    try:
        return tuple(round(v, 2) for v in os.getloadavg())
    except (AttributeError, OSError):
        return None


__all__ = ["busy_cores", "cpu_count", "free_cores", "llama_threads", "load_average",
           "parse_proc_stat", "threads_for"]
