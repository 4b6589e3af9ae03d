"""The language a user writes in, from its common short words (no model, no dependency): the
advisor answers in it, and the judge and the evals check replies with the same reading.

    detect("J'ai 800 radiographies, 3 classes, et un GPU T4 pendant une heure")   # "fr"
    detect("3,000 chest X-rays, 3 classes")                                        # "en"

A message too short to tell (numbers, a model name, "yes") reads as None: the conversation keeps
the language it had.
"""

from __future__ import annotations

import re

# Frequent words that are (nearly) unique to one language; a few hundred characters are enough.
STOPWORDS: dict[str, frozenset[str]] = {
    "en": frozenset("the and is are have has with of for to my i it this that what which how why "
                    "images about do does can you would should only on in not".split()),
    "fr": frozenset("le la les des du un une et est sont avec pour sur dans je j ai mon ma mes "
                    "pendant environ quel quelle quels pourquoi comment combien pas ce cette "
                    "faut il elle nous vous avoir images".split()),
    "de": frozenset("der die das und ist sind mit für auf ich habe mein meine ein eine einen "
                    "nicht wie warum welche welcher etwa ungefähr stunde stunden bilder klassen "
                    "zu von".split()),
    "es": frozenset("el la los las y es son con para en tengo mi mis un una unos unas por qué "
                    "cómo cuál cuánto durante aproximadamente hora horas imágenes clases no de "
                    "del".split()),
    "it": frozenset("il lo la gli le e è sono con per su ho mio mia un una perché come quale "
                    "circa ora ore immagini classi non di del".split()),
    "pt": frozenset("o a os as e é são com para em tenho meu minha um uma por que como qual "
                    "cerca hora horas imagens classes não de do da".split()),
}
NAMES = {"en": "English", "fr": "French", "de": "German", "es": "Spanish", "it": "Italian",
         "pt": "Portuguese"}
MIN_WORDS = 3  # fewer known words than this: too short to tell
_WORD = re.compile(r"[a-zà-ÿ]+(?:'[a-zà-ÿ]+)?", re.IGNORECASE)


def scores(text: str) -> dict[str, int]:
    """Per language, how many of `text`'s words are its stop words."""
    words = [w.lower() for w in _WORD.findall(text.replace("’", "'"))]
    # one-letter words ("a", "e", "o", "y") are shared by too many languages to tell them apart
    split = [p for w in words for p in w.split("'") if len(p) > 1]
    return {lang: sum(w in vocab for w in split) for lang, vocab in STOPWORDS.items()}


def detect(text: str) -> str | None:
    """The language code of `text` (a key of `NAMES`), or None when too short to tell."""
    counts = scores(text)
    lang, best = max(counts.items(), key=lambda kv: kv[1])
    if best < MIN_WORDS:
        return None
    ties = [code for code, n in counts.items() if n == best]
    return "en" if "en" in ties and len(ties) > 1 else lang


def instruction(lang: str | None) -> str:
    """The line a prompt gets for a user writing in `lang` ('' for English or unknown)."""
    if not lang or lang == "en":
        return ""
    return (f"The user writes in {NAMES[lang]}: write your whole reply in {NAMES[lang]} "
            "(keep model names, numbers and units exactly as in the facts).")


__all__ = ["MIN_WORDS", "NAMES", "STOPWORDS", "detect", "instruction", "scores"]
