"""agent.translate: an answer in the user's language, kept only when no number or name changed."""

from __future__ import annotations

from agent.testing import ScriptedChatModel
from agent.translate import keeps_facts, needs_translation, translated

EN = ("I recommend **ResNet-18** at 64 px: predicted accuracy 81.3 % (80 % interval 70.1–88.0 %), "
      "training time ~12 min on t4. Why: the model and the resolution fit your images.")
FR = ("Je recommande **ResNet-18** à 64 px : précision prévue 81.3 % (intervalle à 80 % 70.1–88.0 %), "
      "durée d'entraînement ~12 min sur t4. Pourquoi : le modèle et la résolution sont adaptés à vos images.")


def test_keeps_facts() -> None:
    assert keeps_facts(EN, FR)
    assert not keeps_facts(EN, FR.replace("81.3", "81,3"))  # a decimal comma changes the number
    assert not keeps_facts(EN, FR.replace("ResNet-18", "le réseau"))
    assert not keeps_facts("Run `metallmix train x.npz`.", "Lancez `metallmix entraîner x.npz`.")


def test_translated_only_when_needed_and_faithful() -> None:
    assert not needs_translation(EN, "en") and not needs_translation(EN, None)
    assert needs_translation(EN, "fr") and not needs_translation(FR, "fr")
    assert translated(ScriptedChatModel(script=[FR]), EN, "fr") == FR
    bad = ScriptedChatModel(script=[FR.replace("81.3", "85.0")])
    assert translated(bad, EN, "fr") is None  # the original stands
    english = ScriptedChatModel(script=[EN])
    assert translated(english, EN, "fr") is None
    model = ScriptedChatModel(script=[FR])
    assert translated(model, EN, "en") is None and not model.calls  # no call for English


def test_decimal_commas_are_read_back_and_small_integers_may_be_reworded() -> None:
    from agent.translate import points

    fr = FR.replace("81.3", "81,3").replace("intervalle à 80 %", "intervalle de prédiction")
    assert points(EN, fr) == FR.replace("intervalle à 80 %", "intervalle de prédiction")
    assert keeps_facts(EN, points(EN, fr))
    assert translated(ScriptedChatModel(script=[fr]), EN, "fr") == points(EN, fr)
    assert points(EN, "1,500 images") == "1,500 images"  # a thousands separator stays
