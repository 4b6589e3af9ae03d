"""agent.language: the user's language from its short words."""

from __future__ import annotations

import pytest

from agent.language import detect, instruction


@pytest.mark.parametrize("text, lang", [
    ("J'ai 800 radiographies de thorax, 3 classes, 500x500 px, et un GPU T4 pendant une heure", "fr"),
    ("Tengo unas 2.000 imágenes de dermatoscopia con 4 clases y una RTX 3090 durante dos horas", "es"),
    ("Ich habe etwa 5000 Bilder mit 3 Klassen und eine Stunde auf einer A100", "de"),
    ("I have a few thousand ultrasound images of breast lesions, two classes", "en"),
    ("Give me the exact command to train that.", "en"),
    ("yes", None),
    ("3,000 chest X-rays, 3 classes, 224 px grayscale.", None),
])
def test_detect(text: str, lang: str | None) -> None:
    assert detect(text) == lang


def test_instruction() -> None:
    assert instruction("en") == "" and instruction(None) == ""
    assert "French" in instruction("fr")
