"""Compute budgets in the words people use, and the device catalogue they resolve to."""

from __future__ import annotations

import math

import pytest
from pydantic import ValidationError

from knowledge.errors import ConfigError
from knowledge.metalearner.budget import (
    DEVICE_LABELS,
    DEVICE_SPEEDUP,
    PARALLEL_EFFICIENCY,
    Budget,
    UnknownDeviceError,
    parallel_factor,
    parse_budget,
    parse_duration,
)
from knowledge.metalearner.devices import DEVICES, SPEEDUP_3090, Device, get_device

H = 3600


# --- phrasings -------------------------------------------------------------------------------------
# (text, device, n_devices, seconds, an assumption noted?)
PHRASINGS = [
    ("one hour on a T4", "t4", 1, H, False),
    ("CPU only", "cpu", 1, None, False),
    ("no GPU", "cpu", 1, None, False),
    ("CPU only, 10 minutes", "cpu", 1, 600, False),
    ("10 minutes", "cpu", 1, 600, True),
    ("1h30m on an A100", "a100", 1, 5400, True),
    ("an hour and a half", "cpu", 1, 5400, True),
    ("half an hour on my laptop", "cpu", 1, 1800, True),
    ("my laptop, 1 hour", "cpu", 1, H, True),
    ("my laptop", "cpu", 1, None, True),
    ("2 hours, some GPU", "t4", 1, 2 * H, True),
    ("90 min on a V100", "v100", 1, 5400, True),
    ("V100 for 30 minutes", "v100", 1, 1800, True),
    ("V100 32GB, 1 hour", "v100-32gb", 1, H, False),
    ("H100", "h100", 1, None, False),
    ("H200 for 20 minutes", "h200", 1, 1200, False),
    ("M1 MacBook, 20 minutes", "m1", 1, 1200, True),
    ("1.5 hours", "cpu", 1, 5400, True),
    ("90 min", "cpu", 1, 5400, True),
    ("1h30", "cpu", 1, 5400, True),
    ("2 h and 15 min on a T4", "t4", 1, 8100, False),
    ("one RTX 4090 for 2 hours", "rtx4090", 1, 2 * H, False),
    ("RTX 4090 for 2 hours", "rtx4090", 1, 2 * H, False),
    ("4090", "rtx4090", 1, None, False),
    ("3090 Ti", "rtx3090ti", 1, None, False),
    ("a GeForce RTX 3090, 45 minutes", "rtx3090", 1, 45 * 60, False),
    ("RTX 2080 Ti for 1 hour", "rtx2080ti", 1, H, False),
    ("rtx 2060", "rtx2060", 1, None, False),
    ("RTX 5090, 3 hours", "rtx5090", 1, 3 * H, False),
    ("RTX 4070 Super, 1 hour", "rtx4070", 1, H, True),
    ("30 min on a GTX 1080", "gtx1080", 1, 1800, False),
    ("GTX 1080 Ti", "gtx1080ti", 1, None, False),
    ("GTX 1060, 2 hours", "gtx1060", 1, 2 * H, False),
    ("1 hour on 8xA100", "a100", 8, H, True),
    ("2×A100", "a100", 2, None, True),
    ("two A100s", "a100", 2, None, True),
    ("4 x H100 for 30 min", "h100", 4, 1800, True),
    ("A100 80GB", "a100-80gb", 1, None, False),
    ("an A100 (40 GB), 4 hours", "a100", 1, 4 * H, False),
    ("A100, 4 hours", "a100", 1, 4 * H, True),
    ("Colab", "t4", 1, None, True),
    ("Colab, 1 hour", "t4", 1, H, True),
    ("Colab with an A100 80GB", "a100-80gb", 1, None, False),
    ("Kaggle", "p100", 1, None, True),
    ("Kaggle T4x2, 9 hours", "t4", 2, 9 * H, True),
    ("M2 Max", "m2max", 1, None, True),
    ("MacBook Pro M3", "m3", 1, None, True),
    ("M4 Pro for an hour", "m4pro", 1, H, True),
    ("Mac Studio M1 Ultra, 2 hours", "m1ultra", 1, 2 * H, True),
    ("my Mac, 1 hour", "m1", 1, H, True),
    ("2 hours on an L4", "l4", 1, 2 * H, False),
    ("L40S for 3 hours", "l40s", 1, 3 * H, False),
    ("A10G, 20 min", "a10g", 1, 1200, False),
    ("Titan RTX", "titanrtx", 1, None, False),
    ("RTX A6000, 1 day", "rtxa6000", 1, 86400, False),
    ("RTX Pro 6000 for 2 hours", "rtxpro6000", 1, 2 * H, False),
    ("8 GPUs, 1 hour", "t4", 8, H, True),
    ("T4 for 10 minutes", "t4", 1, 600, False),
]


@pytest.mark.parametrize("text, device, n, seconds, noted", PHRASINGS)
def test_parse_budget(text: str, device: str, n: int, seconds: float | None, noted: bool) -> None:
    budget = parse_budget(text)
    assert (budget.device, budget.n_devices, budget.max_seconds) == (device, n, seconds)
    assert budget.cpu_only == (device == "cpu")
    assert bool(budget.notes) == noted, budget.notes
    if noted:  # the card says what was assumed
        assert budget.describe(notes=True).endswith(")") and "assumed" in budget.describe(notes=True)
    assert "assumed" not in budget.describe()


def test_there_are_at_least_40_phrasings() -> None:
    assert len(PHRASINGS) >= 40


def test_notes_say_what_was_assumed() -> None:
    assert any("T4" in n for n in parse_budget("some GPU").notes)
    assert any("free tier" in n for n in parse_budget("Colab").notes)
    assert any("this machine's CPU" in n for n in parse_budget("my laptop").notes)
    assert any("this machine's CPU" in n for n in parse_budget("10 minutes").notes)
    assert any("40 GB" in n for n in parse_budget("A100").notes)
    assert any("unified memory" in n and "16 GB" in n for n in parse_budget("M2").notes)
    eight = parse_budget("1 hour on 8xA100")
    assert any("data-parallel" in n and "5.83" in n for n in eight.notes)
    assert eight.describe() == "60 min on 8× NVIDIA A100 40 GB (SXM)"


def test_multi_gpu_rule() -> None:
    assert PARALLEL_EFFICIENCY == 0.9
    assert parallel_factor(1) == 1.0
    assert parallel_factor(2) == pytest.approx(1.8)
    assert parallel_factor(8) == pytest.approx(8 * 0.9 ** 3)
    one, eight = parse_budget("A100"), parse_budget("8xA100")
    assert eight.speedup == pytest.approx(one.speedup * parallel_factor(8))
    assert eight.device_speedup == one.speedup and eight.memory_gb == one.memory_gb == 40
    with pytest.raises(ConfigError, match="not a plausible number"):
        parse_budget("500 x A100")


# --- errors ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("text", ["blah", "", "as good as possible", "and", "3000 images"])
def test_parse_budget_rejects_nonsense(text: str) -> None:
    with pytest.raises(ConfigError, match="budget"):
        parse_budget(text)


@pytest.mark.parametrize("text, named", [
    ("on my Quadro K2200", "quadro k2200"),
    ("2 hours on a Tesla K80", "tesla k80"),
    ("RTX 6000", "rtx 6000"),
    ("an L40 for an hour", "l40"),
    ("M4 Ultra", "m4 ultra"),
    ("GTX 980", "gtx 980"),
])
def test_unknown_device_is_never_a_silent_cpu(text: str, named: str) -> None:
    with pytest.raises(UnknownDeviceError, match="unknown device") as info:
        parse_budget(text)
    assert info.value.named == named and info.value.supported
    assert repr(text) in str(info.value) and "A100" in str(info.value)  # says what is known


@pytest.mark.parametrize("text", ["RX 7900 XTX", "on a TPU v4", "Gaudi", "an AMD Radeon, 1 hour",
                                  "Intel Arc A770", "MI300X for a day"])
def test_tpu_amd_intel_are_not_supported(text: str) -> None:
    with pytest.raises(UnknownDeviceError, match="not supported") as info:
        parse_budget(text)
    assert not info.value.supported and repr(text) in str(info.value)


@pytest.mark.parametrize("text, match", [
    ("-5 minutes", "negative"),
    ("T4, -1 hours", "negative"),
    ("0 minutes", "more than 0"),
    ("0 h on a T4", "more than 0"),
    ("1e9 hours", "not a plausible"),
    ("45 days on an A100", "not a plausible"),
    ("1e999 hours", "not a plausible"),
])
def test_bad_durations(text: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match) as info:
        parse_budget(text)
    assert repr(text) in str(info.value)


def test_parse_duration() -> None:
    assert parse_duration("an hour and a half") == 5400
    assert parse_duration("1,5 hours") == 5400
    assert parse_duration("CPU only") is None
    assert parse_duration("M2 Max, L40s") is None  # names, not minutes or seconds


def test_budget_model() -> None:
    assert DEVICE_SPEEDUP["cpu"] == 1.0
    assert DEVICE_SPEEDUP["t4"] < DEVICE_SPEEDUP["v100"] < DEVICE_SPEEDUP["a100"] < DEVICE_SPEEDUP["h100"]
    assert DEVICE_LABELS["t4"] == "NVIDIA T4"
    assert Budget(device="T4").device == "t4"
    assert Budget(device="mps").device == "m1"  # the key before the catalogue
    with pytest.raises(ValidationError, match="unknown device"):
        Budget(device="tpu9")
    with pytest.raises(ValidationError):
        Budget(device="a100", n_devices=0)
    assert parse_budget("one hour on a T4").describe() == "60 min on NVIDIA T4"
    assert parse_budget("offline").describe() == "no time limit on CPU, offline"
    again = Budget.model_validate_json(parse_budget("8xA100, 1 hour").model_dump_json())
    assert again == parse_budget("8xA100, 1 hour")  # JSON round trip (the agent's state)


# --- the catalogue ---------------------------------------------------------------------------------
@pytest.mark.parametrize("key", sorted(DEVICES))
def test_every_device_has_memory_and_a_sourced_figure(key: str) -> None:
    d = DEVICES[key]
    assert isinstance(d, Device) and d.key == key and d.label
    assert d.kind in ("cpu", "gpu", "apple")
    assert d.rel_3090 is not None and 0 < d.rel_3090 < 20 and math.isfinite(d.rel_3090)
    assert len(d.rel_source) > 20
    if d.kind == "cpu":
        assert d.memory_gb is None and d.speedup == 1.0
    else:
        assert d.memory_gb is not None and 4 <= d.memory_gb <= 200
        assert "public figure, not measured here" in d.rel_source or "measured" in d.rel_source
        assert d.speedup == pytest.approx(d.rel_3090 * SPEEDUP_3090)
    if d.kind == "apple":
        assert "unified memory" in d.label


def test_catalogue_covers_the_devices_people_name() -> None:
    wanted = {"cpu", "gtx1060", "gtx1070", "gtx1080", "gtx1080ti", "rtx2060", "rtx2070", "rtx2080",
              "rtx2080ti", "rtx3060", "rtx3070", "rtx3080", "rtx3090", "rtx3090ti", "rtx4060",
              "rtx4070", "rtx4080", "rtx4090", "rtx5070", "rtx5080", "rtx5090", "t4", "p100", "v100",
              "v100-32gb", "a10", "a10g", "l4", "l40s", "a100", "a100-80gb", "h100", "h200",
              "rtxa6000", "rtxpro6000", "titanv", "titanrtx"}
    wanted |= {f"m{i}{v}" for i in range(1, 5) for v in ("", "pro", "max")} | {"m1ultra", "m2ultra"}
    assert wanted <= set(DEVICES)
    assert DEVICES["rtx3090"].rel_3090 == 1.0
    order = ["gtx1060", "gtx1080", "rtx3060", "rtx3080", "rtx3090", "rtx4090", "rtx5090"]
    assert [DEVICES[k].rel_3090 for k in order] == sorted(DEVICES[k].rel_3090 for k in order)
    assert DEVICES["a100"].rel_3090 < DEVICES["a100-80gb"].rel_3090 < DEVICES["h100"].rel_3090


def test_get_device() -> None:
    assert get_device("RTX4090") is DEVICES["rtx4090"]
    with pytest.raises(ConfigError, match="unknown device 'quadro'"):
        get_device("quadro")


def test_the_eval_questions_budgets_parse_to_the_right_device() -> None:
    expected = {"one hour on a T4": "t4", "A100, 4 hours": "a100", "CPU only": "cpu",
                "Colab": "t4", "V100 for 30 minutes": "v100", "2 hours on an L4": "l4",
                "1 hour on 8xA100": "a100", "CPU only, 10 minutes": "cpu", "H100": "h100",
                "my laptop, 1 hour": "cpu", "RTX 4090 for 2 hours": "rtx4090",
                "30 min on a GTX 1080": "gtx1080", "CPU only, 1 minute": "cpu",
                "T4 for 10 minutes": "t4"}
    for text, device in expected.items():
        assert parse_budget(text).device == device, text
    assert parse_budget("1 hour on 8xA100").n_devices == 8
