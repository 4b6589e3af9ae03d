"""Where a run trains: device choice, thread count, the device's name and memory accounting."""

from __future__ import annotations

import os
import platform
import resource
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache

import torch

from knowledge.errors import TrainingError


@lru_cache(maxsize=1)
def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo (Linux), else what `platform` knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "cpu"


def resolve_device(device: str | None = None) -> torch.device:
    """`device` ('cpu', 'cuda', 'cuda:1', 'mps') or CUDA when present, else CPU."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise TrainingError(f"unknown device {device!r}; use cpu, cuda or cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise TrainingError(f"device {device!r} requested but CUDA is not available on this machine")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise TrainingError(f"device {device!r} requested but MPS is not available on this machine")
    return dev


def device_name(dev: torch.device) -> str:
    """A human name for provenance: the CUDA device name or the CPU model."""
    if dev.type == "cuda":
        return torch.cuda.get_device_name(dev)
    if dev.type == "mps":
        return f"Apple MPS ({platform.machine()})"
    return cpu_name()


def thread_count(n: int | None) -> int:
    """The intra-op threads `cpu_threads(n)` uses: `n`, or all cores when `n` is None."""
    return max(1, int(n or os.cpu_count() or 1))


@contextmanager
def cpu_threads(n: int | None) -> Iterator[int]:
    """Use `n` (default: all cores) intra-op threads for the block, then restore the old setting."""
    old = torch.get_num_threads()
    n = thread_count(n)
    torch.set_num_threads(n)
    try:
        yield n
    finally:
        torch.set_num_threads(old)


def _rss_mb() -> float:
    """Current resident memory of this process in MB (Linux /proc), else the lifetime peak."""
    try:
        with open("/proc/self/statm", encoding="utf-8") as fh:
            pages = int(fh.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError, AttributeError):
        scale = 1 if platform.system() == "Darwin" else 1024  # ru_maxrss: bytes on macOS, KB on Linux
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20


@dataclass
class MemoryMeter:
    """Peak memory of a run: CUDA max allocated on a GPU, the sampled peak process RSS on a CPU."""

    dev: torch.device
    peak_mb: float = 0.0

    def __post_init__(self) -> None:
        if self.dev.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.dev)

    def sample(self) -> None:
        if self.dev.type != "cuda":
            self.peak_mb = max(self.peak_mb, _rss_mb())

    def peak(self) -> float:
        if self.dev.type == "cuda":
            return torch.cuda.max_memory_allocated(self.dev) / 2**20
        self.sample()
        return self.peak_mb


def is_oom(exc: BaseException) -> bool:
    """Whether an exception means the device (or host) ran out of memory."""
    if isinstance(exc, (MemoryError, torch.cuda.OutOfMemoryError)):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and (
        "out of memory" in text or "can't allocate memory" in text or "cannot allocate memory" in text
    )
