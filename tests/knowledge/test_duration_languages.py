"""Issue 16 item 5: time limits and devices stated in French, Spanish, German and Italian."""

from __future__ import annotations

import pytest

from knowledge.metalearner.budget import parse_budget
from knowledge.metalearner.duration import OVERNIGHT_SECONDS, parse_duration


@pytest.mark.parametrize(("text", "seconds"), [
    ("pendant une heure", 3600), ("deux heures", 7200), ("30 minutes", 1800),
    ("une demi-heure", 1800), ("une heure et demie", 5400), ("1,5 heures", 5400),
    ("una hora", 3600), ("dos horas", 7200), ("media hora", 1800), ("una hora y media", 5400),
    ("eine Stunde", 3600), ("zwei Stunden", 7200), ("eine halbe Stunde", 1800),
    ("anderthalb Stunden", 5400), ("30 Minuten", 1800),
    ("un'ora", 3600), ("due ore", 7200), ("mezz'ora", 1800),
    ("overnight", OVERNIGHT_SECONDS), ("toute la nuit", OVERNIGHT_SECONDS),
    ("toda la noche", OVERNIGHT_SECONDS), ("über Nacht", OVERNIGHT_SECONDS),
    # English keeps working
    ("1.5 hours", 5400), ("an hour and a half", 5400), ("1h30", 5400), ("half an hour", 1800),
])
def test_durations_in_other_languages(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["un GPU T4", "I have 2 tags per image", "a few classes"])
def test_no_duration(text: str) -> None:
    assert parse_duration(text) is None


@pytest.mark.parametrize(("text", "device", "seconds", "n"), [
    ("un GPU T4 pendant une heure", "t4", 3600, 1),
    ("une RTX 4090 pendant deux heures", "rtx4090", 7200, 1),
    ("una RTX 3090 durante dos horas", "rtx3090", 7200, 1),
    ("eine A100 für zwei Stunden", "a100", 7200, 1),
    ("media hora en CPU", "cpu", 1800, 1),
    ("deux RTX 4090 pendant une heure", "rtx4090", 3600, 2),
    ("sans GPU, 30 minutes", "cpu", 1800, 1),
    ("ohne GPU, eine Stunde", "cpu", 3600, 1),
    ("I have one RTX 4090 and about 2 hours", "rtx4090", 7200, 1),
    ("I have a laptop", "cpu", None, 1),
    ("mi portátil, una hora", "cpu", 3600, 1),
])
def test_budgets_in_other_languages(text: str, device: str, seconds: float | None, n: int) -> None:
    budget = parse_budget(text)
    assert (budget.device, budget.max_seconds, budget.n_devices) == (device, seconds, n)


def test_overnight_is_eight_hours_and_says_so() -> None:
    budget = parse_budget("overnight on my laptop")
    assert budget.max_seconds == OVERNIGHT_SECONDS and budget.device == "cpu"
    assert any("overnight" in note for note in budget.notes)
    assert any("overnight" in note for note in parse_budget("toute la nuit sur une T4").notes)
    assert parse_budget("my MacBook").device.startswith("m")


@pytest.mark.parametrize("text, seconds", [
    ("an H100 for 40 minutes", 2400.0),  # "an H" of "an H100" is not an hour
    ("an h100, 2h", 7200.0),
    ("2 h on an A100", 7200.0),
    ("an hour on a T4", 3600.0),
])
def test_a_card_name_is_not_a_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds
