"""`agent.cpu`: how many llama.cpp threads the free cores allow (no model, no real load)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from agent import cpu

STAT_0 = """cpu  300 0 100 600 0 0 0 0 0 0
cpu0 150 0 50 300 0 0 0 0 0 0
cpu1 150 0 50 300 0 0 0 0 0 0
cpu2 0 0 0 1000 0 0 0 0 0 0
intr 1 2 3
"""
# 100 jiffies later: cpu0 half busy, cpu1 fully busy, cpu2 (not ours) fully busy
STAT_1 = """cpu  500 0 100 700 0 0 0 0 0 0
cpu0 200 0 50 350 0 0 0 0 0 0
cpu1 250 0 50 300 0 0 0 0 0 0
cpu2 100 0 0 1000 0 0 0 0 0 0
intr 1 2 3
"""


@pytest.mark.parametrize(("cores", "busy", "threads"), [
    (2, 0.0, 2), (2, 0.3, 2), (2, 0.5, 1), (2, 1.0, 1), (2, 1.4, 1), (2, 2.0, 1), (2, 3.7, 1),
    (1, 0.0, 1), (8, 2.6, 5), (8, 0.49, 8),
])
def test_threads_rule(cores: int, busy: float, threads: int) -> None:
    assert cpu.threads_for(cores, busy) == threads
    assert cpu.free_cores(cores=cores, busy=busy) == threads


def test_parse_proc_stat_counts_only_the_given_cpus() -> None:
    assert cpu.parse_proc_stat(STAT_0, {0, 1}) == (400.0, 1000.0)
    assert cpu.parse_proc_stat(STAT_0, {2}) == (0.0, 1000.0)
    assert cpu.parse_proc_stat(STAT_0) == (400.0, 2000.0)  # every cpuN line
    # idle + iowait are not busy
    assert cpu.parse_proc_stat("cpu0 10 0 0 50 40 0 0 0\n") == (10.0, 100.0)
    # no cpuN line: the aggregate one
    assert cpu.parse_proc_stat("cpu  10 0 0 90 0 0 0 0\n", {5}) == (10.0, 100.0)


def test_busy_cores_measures_other_processes(tmp_path: Path) -> None:
    stat = tmp_path / "stat"
    stat.write_text(STAT_0)
    busy = cpu.busy_cores(1.0, stat_path=stat, sleep=lambda _: stat.write_text(STAT_1), cpus={0, 1})
    assert busy == pytest.approx(1.5, abs=0.2)  # 0.5 + 1.0 cores; cpu2 is not ours
    assert cpu.free_cores(cores=2, busy=busy) == 1


def test_busy_cores_without_proc_stat(tmp_path: Path) -> None:
    assert cpu.busy_cores(0.0, stat_path=tmp_path / "missing") is None


def test_free_cores_falls_back_to_the_load_average(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cpu, "busy_cores", lambda interval=0.3: None)
    monkeypatch.setattr(os, "getloadavg", lambda: (1.2, 0.5, 0.1))
    assert cpu.free_cores(cores=4) == 3


def test_free_cores_on_this_machine_is_sane() -> None:
    n = cpu.free_cores(0.05)
    assert 1 <= n <= cpu.cpu_count()


def test_configured_threads_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cpu, "free_cores", lambda interval=0.3: 1)
    assert cpu.llama_threads(3) == 3
    assert cpu.llama_threads(None) == 1
