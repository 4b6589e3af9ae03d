"""The words and amounts a user writes about a dataset (`agent.traitparse` reads messages with
them): number words, image and class words, counts with "," "." or space thousands, ranges,
vague amounts ("a few thousand" ~3,000, range 2,000-5,000), class names ("normal vs pneumonia
vs covid"), and modality words in French, Spanish, German and Italian."""

from __future__ import annotations

import re
from dataclasses import dataclass

WORD_INTS: dict[str, int] = {
    "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
    "ten": 10, "eleven": 11, "twelve": 12, "fifteen": 15, "twenty": 20,
    # French, Spanish, German, Italian (only read next to a class word)
    "deux": 2, "trois": 3, "quatre": 4, "cinq": 5, "sept": 7, "huit": 8, "neuf": 9, "dix": 10,
    "dos": 2, "tres": 3, "cuatro": 4, "cinco": 5, "seis": 6, "siete": 7, "ocho": 8, "nueve": 9,
    "diez": 10, "zwei": 2, "drei": 3, "vier": 4, "fünf": 5, "sechs": 6, "sieben": 7, "acht": 8,
    "neun": 9, "zehn": 10, "due": 2, "tre": 3, "quattro": 4, "cinque": 5, "sei": 6, "sette": 7,
    "otto": 8, "nove": 9, "dieci": 10,
}
ENGLISH_WORD_INTS = {w: n for w, n in list(WORD_INTS.items())[:13]}

# A count as written: 3,000 / 3.000 / 3 000 (no-break space) / 3000 / 2.5k / 3k
NUM = (r"(?:\d{1,3}(?:[,.\u00a0\u202f]\d{3})+(?![\d])(?:\s*k\b)?|\d+(?:[.,]\d+)?\s*k\b|\d+"
       r"(?:\.\d+)?)")
LETTER = r"[^\W\d_]"
IMAGE_WORDS = (r"images?|pictures?|photos?|photographs?|scans?|slides?|slices?|samples?|examples?|"
               r"radiographs?|x-?rays?|crops?|patches|tiles?|frames?|"
               r"radiographies|clich[ée]s|im[aá]genes|radiograf[ií]as|fotos|fotograf[ií]as|"
               r"ecograf[ií]as|[ée]chographies|bilder|aufnahmen|r[öo]ntgenbilder|immagini|"
               r"radiografie|foto|ecografie|coupes|cortes|schnitte|resonancias|irm|"
               r"[\w]+-(?:patches|bilder|images|scans|tiles|crops|aufnahmen|photos|fotos|slices|schnitte)")
CLASS_WORDS = (r"classes|categories|labels|class|diagnoses|conditions|types|kinds|clases|"
               r"categor[ií]as|tipos|\w*klassen|kategorien|typen|classi|categorie|tipi|"
               r"cat[ée]gories")
APPROX = (r"(?:about|around|roughly|approximately|approx\.?|~|≈|some|nearly|almost|over|"
           r"environ|unos|unas|aproximadamente|etwa|ungef[äa]hr|circa|ca\.|quasi)")

# Vague amounts: (words, value, low, high). Longer phrases first.
_VAGUE: list[tuple[str, int, int, int]] = [
    (r"(?:a\s+)?few\s+hundred\s+thousand", 300_000, 200_000, 500_000),
    (r"hundreds\s+of\s+thousands|centaines\s+de\s+milliers|cientos\s+de\s+miles|"
     r"hunderttausende|centinaia\s+di\s+migliaia", 300_000, 100_000, 900_000),
    (r"tens\s+of\s+thousands|dizaines\s+de\s+milliers|decenas\s+de\s+miles|zehntausende|"
     r"decine\s+di\s+migliaia", 30_000, 10_000, 90_000),
    (r"(?:a\s+)?few\s+million", 3_000_000, 2_000_000, 5_000_000),
    (r"(?:a\s+)?few\s+thousand|quelques\s+milliers|(?:unos|algunos)\s+(?:pocos\s+)?miles|"
     r"(?:ein\s+paar|einige)\s+tausend|alcune\s+migliaia|qualche\s+migliaio", 3000, 2000, 5000),
    (r"(?:a\s+)?couple(?:\s+of)?\s+thousand", 2000, 1500, 3000),
    (r"several\s+thousand|plusieurs\s+milliers|varios\s+miles|mehrere\s+tausend|"
     r"diverse\s+migliaia", 5000, 3000, 9000),
    (r"(?:many\s+)?thousands|des\s+milliers|miles\s+de|tausende|migliaia", 5000, 2000, 10_000),
    (r"(?:a\s+)?few\s+hundred|quelques\s+centaines|(?:unos|algunos)\s+(?:pocos\s+)?cientos|"
     r"(?:ein\s+paar|einige)\s+hundert|alcune\s+centinaia|qualche\s+centinaio", 300, 200, 500),
    (r"(?:a\s+)?couple(?:\s+of)?\s+hundred", 200, 150, 300),
    (r"several\s+hundred|plusieurs\s+centaines|varios\s+cientos|mehrere\s+hundert|"
     r"diverse\s+centinaia", 500, 300, 900),
    (r"hundreds|des\s+centaines|cientos\s+de|hunderte|centinaia", 500, 200, 1000),
    (r"(?:a\s+)?few\s+dozen", 40, 24, 60),
    (r"dozens", 50, 24, 100),
]
VAGUE_TEXT = "|".join(p for p, *_ in _VAGUE)
VAGUE = re.compile(r"(?<!\w)(?:" + "|".join(f"(?P<v{i}>{p})" for i, (p, *_) in enumerate(_VAGUE))
                   + r")(?!\w)", re.IGNORECASE)
GRAY = re.compile(r"\b(gr[ae]y\s*-?scale|gr[ae]y|monochrome|single[- ]channel|niveaux\s+de\s+gris|"
                  r"escala\s+de\s+grises|graustufen|scala\s+di\s+grigi)\b", re.IGNORECASE)
COLOUR = re.compile(r"\b(rgb|colou?r(ed)?|couleur|colores|farbig|farbe|farbbilder|colori)\b",
                    re.IGNORECASE)
_SCALE_WORDS = {"hundred": 100, "thousand": 1000, "million": 1_000_000, "mille": 1000,
                "mil": 1000, "tausend": 1000, "mila": 1000}
SCALED_WORDS = ("(?:\\d+(?:[.,]\\d+)?|" + "|".join(ENGLISH_WORD_INTS) + "|a|one)\\s+(?:"
                 + "|".join(_SCALE_WORDS) + ")\\b")
_SCALED = re.compile(r"(?<![\w.,])(\d+(?:[.,]\d+)?|" + "|".join(ENGLISH_WORD_INTS) + r"|a|one)\s+("
                     + "|".join(_SCALE_WORDS) + r")\b", re.IGNORECASE)
RANGE_TEXT = (r"(?:(?:between|entre|zwischen|tra|fra)\s+" + NUM + r"\s+(?:and|et|y|und|e)\s+" + NUM
               + r"|" + NUM + r"\s*(?:-|–|—|to|à|a|bis)\s*" + NUM + r")(?![\w.,])")
_RANGE = re.compile(r"(?:(?:between|entre|zwischen|tra|fra)\s+(" + NUM + r")\s+(?:and|et|y|und|e)\s+("
                    + NUM + r")|(" + NUM + r")\s*(?:-|–|—|to|à|a|bis)\s*(" + NUM + r"))(?![\w.,])",
                    re.IGNORECASE)


# Modality words in French, Spanish, German, Italian (English ones: knowledge.metafeatures).
FOREIGN_MODALITIES: dict[str, str] = {
    r"radiographies?|radiograf[ií]as?|radiografie|r[öo]ntgen\w*|clich[ée]s\s+thoraciques": "x-ray",
    r"[ée]chographies?|ecograf[ií]as?|ecografie|ultraschall\w*|sonograf[ií]as?": "ultrasound",
    r"irm|resonancias?(?:\s+magn[ée]ticas?)?|mrt|risonanz[ae](?:\s+magnetich[ae])?": "mri",
    r"tomodensitom[ée]trie|tomograf[ií]as?\s+computarizadas?|tac|tomografie\s+computerizzate|"
    r"computertomograph\w*": "ct",
    r"dermatoscopi[ea]s?|dermoscopi[ea]s?|dermatoskopie|dermoskopie": "dermoscopy",
    r"fond\s+d'[œo]e?il|fondo\s+(?:de\s+)?ojo|fondo\s+oculare|fundusaufnahmen|"
    r"r[ée]tinographies?|retinograf[ií]as?": "fundus",
    r"histo(?:pat(?:h)?olog\w*|log\w*)|istopatolog\w*|istolog\w*": "histopathology",
    r"microscopi[ea]s?|microscop[ií]as?|mikroskop\w*": "microscopy",
}
FOREIGN_MODALITY = re.compile(r"(?<!\w)(?:" + "|".join(f"(?P<m{i}>{p})" for i, p in enumerate(
    FOREIGN_MODALITIES)) + r")(?!\w)", re.IGNORECASE)


def foreign_modality(text: str) -> str | None:
    """The modality a French/Spanish/German/Italian word names ("radiographies" -> "x-ray")."""
    if (m := FOREIGN_MODALITY.search(text)) is None:
        return None
    index = int(next(k for k, v in m.groupdict().items() if v is not None)[1:])
    return list(FOREIGN_MODALITIES.values())[index]


# Words that point to a modality without naming it ("blood-cell crops", "moles"): an LLM's
# modality that none of them allows is not taken (a 1.5B model called blood-cell crops x-ray).
MODALITY_HINTS: dict[str, str] = {
    r"blood[- ]?cells?|cells?|smears?|nucle(?:i|us)|cytolog\w*|bacteri\w*|parasites?|malaria|"
    r"zellen|cellules|c[ée]lulas|cellule": "microscopy",
    r"h\s*&\s*e|tissue|biops(?:y|ies)|whole[- ]slide|wsi|pathology|gewebe|tissu|tejido": "histopathology",
    r"moles?|melanomas?|nev(?:us|i)|skin|dermat\w*|lesions?\s+of\s+the\s+skin": "dermoscopy",
    r"chest\s+films?|radiograph\w*|mammogra\w*|x-?rays?|cxr": "x-ray",
    r"retina\w*|diabetic\s+retinopathy|eye": "fundus",
    r"sonograph\w*|echograph\w*|ultrasound": "ultrasound",
}
_HINT = [(re.compile(r"(?<!\w)(?:" + p + r")(?!\w)", re.IGNORECASE), m) for p, m in MODALITY_HINTS.items()]


def modality_hints(text: str) -> set[str]:
    """The modalities `text`'s words point to (`MODALITY_HINTS`; OCT counts with fundus)."""
    found = {m for pattern, m in _HINT if pattern.search(text)}
    return found | ({"oct"} if "fundus" in found else set())


@dataclass(frozen=True)
class Amount:
    """A count as written: `value` (a range's midpoint, a vague amount's usual reading) and the
    range it stands for (`lo` = `hi` = value when written exactly)."""

    value: int
    lo: int
    hi: int
    vague: bool = False
    approx: bool = False  # "about 3,000"

    @property
    def is_range(self) -> bool:
        return self.lo != self.hi


def to_int(text: str) -> int | None:
    """'3,000' / '3.000' / '3 000' -> 3000, '1.5k' -> 1500, 'three' -> 3; None if unreadable."""
    text = text.strip().lower()
    if text in WORD_INTS:
        return WORD_INTS[text]
    mult = 1000 if text.endswith("k") else 1
    digits = text.rstrip("k").strip()
    if re.fullmatch(r"\d{1,3}(?:[,.\u00a0\u202f ]\d{3})+", digits):
        digits = re.sub(r"[,.\u00a0\u202f ]", "", digits)
    digits = digits.replace(",", ".")
    try:
        if "." not in digits:
            return int(digits) * mult
        return int(round(float(digits) * mult))
    except (ValueError, OverflowError):
        return None


def to_float(text: str) -> float | None:
    try:
        return float(text.strip().replace(",", "."))
    except ValueError:
        return None


def vague_amount(match: re.Match[str]) -> Amount:
    index = int(next(k for k, v in match.groupdict().items() if v is not None)[1:])
    _, value, lo, hi = _VAGUE[index]
    return Amount(value, lo, hi, vague=True)


def amount_at(text: str) -> Amount | None:
    """The amount `text` starts with: a vague one, a range, a scaled word or a number."""
    text = text.strip()
    if (m := VAGUE.match(text)) is not None:
        return vague_amount(m)
    if (m := _RANGE.match(text)) is not None and m.end() == len(text.rstrip()):
        return _range(m)
    if (m := _SCALED.match(text)) is not None:
        return _scaled(m)
    value = to_int(text)
    return Amount(value, value, value) if value is not None else None


def _range(m: re.Match[str]) -> Amount | None:
    first, second = m.group(1) or m.group(3), m.group(2) or m.group(4)
    lo, hi = to_int(first), to_int(second)
    if lo is None or hi is None:
        return None
    if second.strip().lower().endswith("k") and not first.strip().lower().endswith("k") \
            and lo < 1000 <= hi:
        lo *= 1000  # "2-3k"
    if not 0 < lo < hi or hi > 20 * lo:
        return None
    return Amount(int(round((lo + hi) / 2)), lo, hi)


def _scaled(m: re.Match[str]) -> Amount:
    head = m.group(1).lower()
    base = 1.0 if head in ("a", "one") else ENGLISH_WORD_INTS.get(head) or float(
        head.replace(",", "."))
    value = int(round(base * _SCALE_WORDS[m.group(2).lower()]))
    return Amount(value, value, value)


# A total: an amount, up to three words, an image word ("about 3,000 chest X-rays")

_MODEL_WORDS = re.compile(r"resnet|vit\b|efficientnet|convnext|densenet|mobilenet|vgg|swin|deit|"
                          r"\bcnn|transformer|model|adam|sgd|pretrained|scratch|fine-?tun|epoch|"
                          r"\blr\b|learning rate|batch|faster|accura", re.IGNORECASE)
_NAME_SPLIT = re.compile(r"\s*(?:,|/|;|\||\+|&|\bvs\.?|\bversus\b|\bor\b|\band\b|\bet\b|\bou\b|"
                         r"\by\b|\bo\b|\bund\b|\boder\b|\be\b)\s*", re.IGNORECASE)
_NAME_LEAD = re.compile(r"^\s*(?:(?:the\s+)?(?:classes|categories|labels)\s*(?:are|:)?|they\s+are|"
                        r"they'?re|it'?s|it\s+is|either|i\s+have|we\s+have|les\s+classes\s+sont|"
                        r"las\s+clases\s+son|die\s+klassen\s+sind|le\s+classi\s+sono)\s*:?\s*",
                        re.IGNORECASE)
_CLASS_MARKER = re.compile(r"(?:classes|categories|labels|labell?ed(?:\s+as)?|classified\s+as|"
                           r"clases|klassen|classi)\s*(?:are|:|as|sont|son|sind|sono)?\s*:?\s*$",
                           re.IGNORECASE)
_TWO_NAMES = re.compile(r"[a-zà-ÿ][\w-]*\s+(?:or|ou|o|oder)\s+(?:not\s+|no\s+)?[a-zà-ÿ][\w-]*",
                        re.IGNORECASE)
# "CPU or GPU", "one or two", "today or tomorrow": two words with "or" that are not class names
_NOT_CLASS_NAMES = re.compile(r"\b(?:cpu|gpu|laptop|colab|hours?|minutes?|days?|weeks?|today|"
                              r"tomorrow|more|less|fewer|better|worse|faster|slower|so|that|this|"
                              r"one|two|three|either|whatever|something|anything|yes|no)\b",
                              re.IGNORECASE)
_VS = re.compile(r"\b(?:vs\.?|versus)\s", re.IGNORECASE)


# words of a sentence, not of a list of names ("Eight cell types, give or take")
_NOT_NAMES = re.compile(r"\b(?:i|we|you|it'?s?|is|are|was|think|know|sure|maybe|perhaps|give|take|"
                        r"about|around|roughly|not|don'?t|have|has|had|some|many|few|several|"
                        r"types?|kinds?|" + "|".join(WORD_INTS) + r")\b", re.IGNORECASE)


def class_names(text: str) -> list[str] | None:
    """The class names `text` lists ("normal vs pneumonia vs covid", "benign, malignant or
    normal"), or None when it is not such a list (fewer than two short names, digits, model
    words)."""
    text = _NAME_LEAD.sub("", text.strip().rstrip(".!?"))
    if not text or re.search(r"\d|\?", text) or _MODEL_WORDS.search(text) or _NOT_NAMES.search(text):
        return None
    names = [p.strip(" \"'()") for p in _NAME_SPLIT.split(text) if p and p.strip(" \"'()")]
    if len(names) < 2 or any(len(n.split()) > 3 for n in names):
        return None
    return names


def listed_names(text: str) -> list[str] | None:
    """Class names listed in a description: after "classes:" / "labelled", or an "A vs B" list."""
    for clause in re.split(r"[.;!\n()]", text):
        head, sep, tail = clause.rpartition(":")
        candidates = []
        if sep and _CLASS_MARKER.search(head + ":"):
            candidates.append(tail)
        if (m := _CLASS_MARKER.search(clause.split(":")[0])) is None and _VS.search(clause):
            candidates.append(tail if sep else clause.split(",")[-1] if "," in clause
                              and _VS.search(clause.split(",")[-1]) else clause)
            # "3,500 photos, melanoma vs nevus, and ...": the comma part that holds the "vs"
            candidates += [part for part in clause.split(",") if _VS.search(part)]
        # "..., benign or malignant, about 300x300": a comma part that is two names and "or"
        candidates += [part for part in clause.split(",") if _TWO_NAMES.fullmatch(part.strip())
                       and not _NOT_CLASS_NAMES.search(part)]
        for marker in re.finditer(r"(?:labell?ed(?:\s+as)?|classified\s+as|classes\s+are)\s+",
                                  clause, re.IGNORECASE):
            candidates.append(clause[marker.end():])
        for candidate in candidates:
            if (names := class_names(candidate)) is not None:
                return names
        del m
    return None



__all__ = ["APPROX", "CLASS_WORDS", "COLOUR", "GRAY", "ENGLISH_WORD_INTS", "FOREIGN_MODALITIES", "IMAGE_WORDS", "LETTER",
           "NUM", "RANGE_TEXT", "SCALED_WORDS", "VAGUE", "VAGUE_TEXT", "WORD_INTS", "Amount", "amount_at",
           "class_names", "foreign_modality", "listed_names", "modality_hints", "to_float", "to_int", "vague_amount"]
