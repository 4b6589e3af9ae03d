"""A catalogue of the devices a compute budget may name: memory per card and training throughput
relative to an NVIDIA GeForce RTX 3090 with automatic mixed precision (AMP).

    get_device("rtx4090")   -> Device(key="rtx4090", label="NVIDIA GeForce RTX 4090", memory_gb=24, ...)
    DEVICES["t4"].rel_3090  -> 0.28

`rel_3090` is a PUBLIC FIGURE, NOT MEASURED HERE. Unless its `rel_source` says otherwise it is

    rel_3090 = sqrt( (tensor TFLOPS / 71) * (memory bandwidth GB/s / 936) )

the geometric mean of two spec-sheet ratios against the RTX 3090 (71 dense FP16 tensor TFLOPS with
FP32 accumulate, 936 GB/s): compute for large convolutions and matrix products, bandwidth for the
memory-bound rest (normalisation, activations, optimiser steps, small images). "Tensor TFLOPS" is
the dense (not sparse) FP16 tensor-core rate with FP32 accumulate — what PyTorch AMP uses — from
NVIDIA's architecture whitepapers (Pascal, Volta, Turing, Ampere GA102, Ada, Blackwell) and product
datasheets; GeForce cards run FP32-accumulate at half their FP16-accumulate rate, the data-centre
and professional cards at full rate. Cards without tensor cores (Pascal: GTX 10xx, P100) use their
FP16 rate where it is full speed (P100) and their FP32 rate otherwise (GTX 10xx: FP16 is 1/64
rate there, so AMP does not help). Apple-silicon GPUs have no tensor cores: their FP32 TFLOPS
(FP16 runs at the same rate) and unified-memory bandwidth, from Apple's announcements (M1, M2
families) or from GPU cores x 128 ALUs x 2 x clock as commonly reported (M3, M4 families: Apple
publishes no TFLOPS). Real training speed depends on the model, resolution, batch size, data
loading and software (PyTorch MPS is less mature than CUDA); treat these as +-50 %.

Memory is per card (GB). Apple memory is unified memory SHARED with the CPU and the OS, and it
depends on the configuration bought: the figure is one typical configuration, named in `label`.
The CPU entry is the 2-core development CPU the runs were timed on (see `budget`), its memory is
the machine's RAM and not catalogued (None).

`SPEEDUP_3090` converts: time on a device = time on the timing CPU / (rel_3090 * SPEEDUP_3090).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from knowledge.errors import ConfigError

# How many times faster than the 2-core timing CPU an RTX 3090 trains (rough public ratio, not
# measured here; chosen so that the earlier table's T4 ~ 15x and A100 ~ 70x the CPU still hold).
SPEEDUP_3090 = 26.0
_REF_TFLOPS = 71.0     # RTX 3090: dense FP16 tensor TFLOPS, FP32 accumulate (GA102 whitepaper)
_REF_BANDWIDTH = 936.0  # RTX 3090: GB/s

_NOT_MEASURED = "public figure, not measured here"


@dataclass(frozen=True)
class Device:
    """One device a budget may name."""

    key: str
    label: str
    kind: Literal["cpu", "gpu", "apple"]
    memory_gb: float | None  # per card; Apple: unified memory of the typical configuration
    rel_3090: float | None  # training throughput relative to an RTX 3090 with AMP
    rel_source: str
    vendor_note: str = ""

    @property
    def speedup(self) -> float:
        """Times faster than the 2-core CPU the runs were timed on (1.0 for the CPU)."""
        if self.kind == "cpu":
            return 1.0
        return (self.rel_3090 or 0.0) * SPEEDUP_3090


def spec_ratio(tflops: float, bandwidth_gbs: float) -> float:
    """sqrt((tflops / 71) * (bandwidth / 936)): the spec-sheet throughput ratio to an RTX 3090."""
    return math.sqrt((tflops / _REF_TFLOPS) * (bandwidth_gbs / _REF_BANDWIDTH))


# 70 W cards (T4, L4) cannot hold the boost clocks their TFLOPS assume through a training run. The
# undamped formula puts a T4 at 0.43 of a V100; NVIDIA's DeepLearningExamples ResNet-50 v1.5 training
# tables (mixed precision) put it at roughly a fifth (recalled, not re-checked here: no internet).
LOW_POWER_DERATE = 0.5


def _spec(key: str, label: str, kind: Literal["gpu", "apple"], memory_gb: float, tflops: float,
          bandwidth: float, doc: str, what: str = "dense FP16 tensor TFLOPS (FP32 accumulate)",
          note: str = "", derate: float = 1.0) -> Device:
    rel = round(spec_ratio(tflops, bandwidth) * derate, 3)
    source = (f"{_NOT_MEASURED}: geometric mean of {what} {tflops:g} / 71 and memory bandwidth "
              f"{bandwidth:g} / 936 GB/s vs the RTX 3090 ({doc})")
    if derate != 1.0:
        source += (f", x {derate:g} for a 70 W card's sustained clocks (a T4 trains ResNet-50 at "
                   "about a fifth of a V100's rate in NVIDIA's published tables)")
    return Device(key, label, kind, memory_gb, rel, source, note)


_TURING = "NVIDIA Turing architecture whitepaper, Founders Edition clocks"
_AMPERE = "NVIDIA Ampere GA102 whitepaper / GeForce RTX 30 spec pages; non-FE cards scaled by cores x boost clock"
_ADA = "NVIDIA Ada Lovelace whitepaper / GeForce RTX 40 spec pages; smaller cards scaled by cores x boost clock"
_BLACKWELL = "NVIDIA RTX Blackwell GPU architecture whitepaper / GeForce RTX 50 spec pages; scaled by SMs x boost clock"
_PASCAL_FP32 = "FP32 TFLOPS (no tensor cores; FP16 is 1/64 rate, AMP does not help)"
_APPLE_WHAT = "FP32 (= FP16) GPU TFLOPS, no tensor cores,"
_APPLE_DOC = "Apple's M1/M2 family announcements"
_APPLE_DOC_34 = "GPU cores x 128 ALUs x 2 x clock, commonly reported; Apple publishes no TFLOPS"
_UNIFIED = "unified memory, shared with the CPU and OS"

_CATALOGUE: list[Device] = [
    Device("cpu", "CPU", "cpu", None, round(1 / SPEEDUP_3090, 4),
           "by definition: the 2-core development CPU the runs were timed on (1 / SPEEDUP_3090; "
           "the 3090 figure is a rough public ratio, not measured here)",
           "memory is this machine's RAM, not catalogued"),
    # --- GeForce, Pascal (no tensor cores) -----------------------------------------------------
    _spec("gtx1060", "NVIDIA GeForce GTX 1060 6 GB", "gpu", 6, 4.4, 192, "NVIDIA GTX 1060 spec page", _PASCAL_FP32),
    _spec("gtx1070", "NVIDIA GeForce GTX 1070", "gpu", 8, 6.5, 256, "NVIDIA GTX 1070 spec page", _PASCAL_FP32),
    _spec("gtx1080", "NVIDIA GeForce GTX 1080", "gpu", 8, 8.9, 320, "NVIDIA GTX 1080 spec page", _PASCAL_FP32),
    _spec("gtx1080ti", "NVIDIA GeForce GTX 1080 Ti", "gpu", 11, 11.3, 484, "NVIDIA GTX 1080 Ti spec page",
          _PASCAL_FP32),
    # --- Titan -----------------------------------------------------------------------------------
    _spec("titanv", "NVIDIA Titan V", "gpu", 12, 110, 653, "NVIDIA Titan V spec page (110 tensor TFLOPS)"),
    _spec("titanrtx", "NVIDIA Titan RTX", "gpu", 24, 130.5, 672, _TURING + " (Titan RTX: full-rate FP32 accumulate)"),
    # --- GeForce, Turing -------------------------------------------------------------------------
    _spec("rtx2060", "NVIDIA GeForce RTX 2060", "gpu", 6, 25.8, 336, _TURING),
    _spec("rtx2070", "NVIDIA GeForce RTX 2070", "gpu", 8, 31.5, 448, _TURING),
    _spec("rtx2080", "NVIDIA GeForce RTX 2080", "gpu", 8, 42.4, 448, _TURING),
    _spec("rtx2080ti", "NVIDIA GeForce RTX 2080 Ti", "gpu", 11, 56.9, 616, _TURING),
    # --- GeForce, Ampere -------------------------------------------------------------------------
    _spec("rtx3060", "NVIDIA GeForce RTX 3060 12 GB", "gpu", 12, 25.4, 360, _AMPERE),
    _spec("rtx3060ti", "NVIDIA GeForce RTX 3060 Ti", "gpu", 8, 32.3, 448, _AMPERE),
    _spec("rtx3070", "NVIDIA GeForce RTX 3070", "gpu", 8, 40.6, 448, _AMPERE),
    _spec("rtx3070ti", "NVIDIA GeForce RTX 3070 Ti", "gpu", 8, 43.4, 608, _AMPERE),
    _spec("rtx3080", "NVIDIA GeForce RTX 3080 10 GB", "gpu", 10, 59.5, 760, _AMPERE),
    _spec("rtx3080ti", "NVIDIA GeForce RTX 3080 Ti", "gpu", 12, 68.2, 912, _AMPERE),
    _spec("rtx3090", "NVIDIA GeForce RTX 3090", "gpu", 24, 71, 936, _AMPERE + "; the reference card"),
    _spec("rtx3090ti", "NVIDIA GeForce RTX 3090 Ti", "gpu", 24, 80, 1008, _AMPERE),
    # --- GeForce, Ada ----------------------------------------------------------------------------
    _spec("rtx4060", "NVIDIA GeForce RTX 4060", "gpu", 8, 30.2, 272, _ADA),
    _spec("rtx4060ti", "NVIDIA GeForce RTX 4060 Ti 8 GB", "gpu", 8, 44.2, 288, _ADA),
    _spec("rtx4070", "NVIDIA GeForce RTX 4070", "gpu", 12, 58.3, 504, _ADA),
    _spec("rtx4070ti", "NVIDIA GeForce RTX 4070 Ti", "gpu", 12, 80.2, 504, _ADA),
    _spec("rtx4080", "NVIDIA GeForce RTX 4080", "gpu", 16, 97.5, 717, _ADA),
    _spec("rtx4090", "NVIDIA GeForce RTX 4090", "gpu", 24, 165.2, 1008, _ADA),
    # --- GeForce, Blackwell ----------------------------------------------------------------------
    _spec("rtx5070", "NVIDIA GeForce RTX 5070", "gpu", 12, 61.7, 672, _BLACKWELL),
    _spec("rtx5070ti", "NVIDIA GeForce RTX 5070 Ti", "gpu", 16, 87.9, 896, _BLACKWELL),
    _spec("rtx5080", "NVIDIA GeForce RTX 5080", "gpu", 16, 112.6, 960, _BLACKWELL),
    _spec("rtx5090", "NVIDIA GeForce RTX 5090", "gpu", 32, 209.5, 1792, _BLACKWELL),
    # --- data centre -----------------------------------------------------------------------------
    _spec("p100", "NVIDIA Tesla P100 16 GB (PCIe)", "gpu", 16, 18.7, 732, "NVIDIA Tesla P100 datasheet",
          "FP16 TFLOPS (no tensor cores, full-rate FP16)", "Kaggle's single GPU"),
    _spec("t4", "NVIDIA T4", "gpu", 16, 65, 320, "NVIDIA T4 datasheet", derate=LOW_POWER_DERATE,
          note="a 70 W card: derated for its sustained clocks (LOW_POWER_DERATE)"),
    _spec("v100", "NVIDIA V100 16 GB (SXM2)", "gpu", 16, 125, 900, "NVIDIA V100 datasheet",
          note="the PCIe card: 112 TFLOPS, ~5 % slower"),
    _spec("v100-32gb", "NVIDIA V100 32 GB (SXM2)", "gpu", 32, 125, 900, "NVIDIA V100 datasheet"),
    _spec("a10", "NVIDIA A10", "gpu", 24, 125, 600, "NVIDIA A10 datasheet"),
    _spec("a10g", "NVIDIA A10G (AWS)", "gpu", 24, 125, 600,
          "no NVIDIA datasheet; AWS describes it as A10-class: the A10 datasheet figures",
          note="AWS G5 instances; clocks may differ from the A10"),
    _spec("l4", "NVIDIA L4", "gpu", 24, 121, 300, "NVIDIA L4 datasheet", derate=LOW_POWER_DERATE,
          note="a 72 W card: derated as the T4 (LOW_POWER_DERATE); no published training figure "
               "was at hand to check it"),
    _spec("l40s", "NVIDIA L40S", "gpu", 48, 362, 864, "NVIDIA L40S datasheet"),
    _spec("a100", "NVIDIA A100 40 GB (SXM)", "gpu", 40, 312, 1555, "NVIDIA A100 datasheet"),
    _spec("a100-80gb", "NVIDIA A100 80 GB (SXM)", "gpu", 80, 312, 2039, "NVIDIA A100 datasheet"),
    _spec("h100", "NVIDIA H100 80 GB (SXM)", "gpu", 80, 989, 3350, "NVIDIA H100 datasheet",
          note="the PCIe card (756 TFLOPS, 2000 GB/s) is ~30 % slower; small models at 28-64 px "
               "cannot use most of this card"),
    _spec("h200", "NVIDIA H200 141 GB (SXM)", "gpu", 141, 989, 4800, "NVIDIA H200 datasheet",
          note="small models at 28-64 px cannot use most of this card"),
    _spec("rtxa6000", "NVIDIA RTX A6000", "gpu", 48, 154.8, 768, "NVIDIA RTX A6000 datasheet (309.7 sparse)"),
    _spec("rtxpro6000", "NVIDIA RTX Pro 6000 (Blackwell)", "gpu", 96, 500, 1792,
          "NVIDIA RTX Pro 6000 Blackwell datasheet: 4000 AI TOPS (FP4, sparse) / 2 dense / 4 for FP16",
          note="derived from the FP4 figure; in practice about a 5090 plus ~10 % for image models"),
    # --- Apple silicon (kind "apple": PyTorch MPS) -----------------------------------------------
    _spec("m1", "Apple M1 (8-core GPU, 16 GB " + _UNIFIED + ")", "apple", 16, 2.6, 68.25, _APPLE_DOC, _APPLE_WHAT),
    _spec("m1pro", "Apple M1 Pro (16-core GPU, 16 GB " + _UNIFIED + ")", "apple", 16, 5.2, 200, _APPLE_DOC, _APPLE_WHAT),
    _spec("m1max", "Apple M1 Max (32-core GPU, 32 GB " + _UNIFIED + ")", "apple", 32, 10.4, 400, _APPLE_DOC, _APPLE_WHAT),
    _spec("m1ultra", "Apple M1 Ultra (64-core GPU, 64 GB " + _UNIFIED + ")", "apple", 64, 21, 800, _APPLE_DOC, _APPLE_WHAT),
    _spec("m2", "Apple M2 (10-core GPU, 16 GB " + _UNIFIED + ")", "apple", 16, 3.6, 100, _APPLE_DOC, _APPLE_WHAT),
    _spec("m2pro", "Apple M2 Pro (19-core GPU, 16 GB " + _UNIFIED + ")", "apple", 16, 6.8, 200, _APPLE_DOC, _APPLE_WHAT),
    _spec("m2max", "Apple M2 Max (38-core GPU, 32 GB " + _UNIFIED + ")", "apple", 32, 13.6, 400, _APPLE_DOC, _APPLE_WHAT),
    _spec("m2ultra", "Apple M2 Ultra (76-core GPU, 64 GB " + _UNIFIED + ")", "apple", 64, 27.2, 800, _APPLE_DOC, _APPLE_WHAT),
    _spec("m3", "Apple M3 (10-core GPU, 16 GB " + _UNIFIED + ")", "apple", 16, 4.1, 100, _APPLE_DOC_34, _APPLE_WHAT),
    _spec("m3pro", "Apple M3 Pro (18-core GPU, 18 GB " + _UNIFIED + ")", "apple", 18, 7.4, 150, _APPLE_DOC_34, _APPLE_WHAT),
    _spec("m3max", "Apple M3 Max (40-core GPU, 48 GB " + _UNIFIED + ")", "apple", 48, 16.4, 400, _APPLE_DOC_34, _APPLE_WHAT),
    _spec("m3ultra", "Apple M3 Ultra (80-core GPU, 96 GB " + _UNIFIED + ")", "apple", 96, 32.8, 819, _APPLE_DOC_34, _APPLE_WHAT),
    _spec("m4", "Apple M4 (10-core GPU, 16 GB " + _UNIFIED + ")", "apple", 16, 4.4, 120, _APPLE_DOC_34, _APPLE_WHAT),
    _spec("m4pro", "Apple M4 Pro (20-core GPU, 24 GB " + _UNIFIED + ")", "apple", 24, 8.7, 273, _APPLE_DOC_34, _APPLE_WHAT),
    _spec("m4max", "Apple M4 Max (40-core GPU, 48 GB " + _UNIFIED + ")", "apple", 48, 17.4, 546, _APPLE_DOC_34, _APPLE_WHAT),
]

DEVICES: dict[str, Device] = {d.key: d for d in _CATALOGUE}

# Older keys still accepted (Budget(device="mps") before the catalogue: an unnamed Apple GPU).
ALIASES: dict[str, str] = {"mps": "m1", "a100-40gb": "a100", "v100-16gb": "v100"}

KNOWN_TEXT = ("CPU; NVIDIA GeForce GTX 1060/1070/1080/1080 Ti, RTX 2060-2080 Ti, 3060-3090 Ti, "
              "4060-4090, 5070-5090, Titan V/RTX; NVIDIA T4, P100, V100 (16/32 GB), A10/A10G, L4, "
              "L40S, A100 (40/80 GB), H100, H200, RTX A6000, RTX Pro 6000; Apple M1-M4 "
              "(Pro/Max, M1-M3 Ultra); 'Colab' (a T4), 'Kaggle' (a P100)")


def get_device(key: str) -> Device:
    """The catalogue entry for `key` (case-insensitive; legacy aliases accepted); ConfigError for
    a device the catalogue does not know."""
    name = str(key).strip().lower()
    name = ALIASES.get(name, name)
    if name not in DEVICES:
        raise ConfigError(f"unknown device {key!r}; known: {KNOWN_TEXT}")
    return DEVICES[name]


__all__ = ["ALIASES", "DEVICES", "KNOWN_TEXT", "SPEEDUP_3090", "Device", "get_device", "spec_ratio"]
