"""The numbers a user writes about a dataset, read without an LLM (used by `agent.extraction`).

    read_counts("about 10,000 dermoscopy images, 7 classes (largest class 6,705, smallest 115)")
      .instances   -> Amount(value=10000, lo=10000, hi=10000, vague=False, approx=True)
      .largest, .smallest, .ratio  -> 6705, 115, 58.0
    read_counts("a few thousand x-rays").instances -> Amount(3000, 2000, 5000, vague=True)
    read_counts("3,000 normal, 1,500 benign and 200 malignant").counts -> [3000, 1500, 200]
    class_names("normal vs pneumonia vs covid") -> ["normal", "pneumonia", "covid"]

Numbers may use "," or "." (or a space) between thousands ("2.000 imágenes" is 2,000); image and
class words are read in English, French, Spanish, German and Italian. `roles` says what each
number of a message is (a total, a class size, a ratio, a size, a duration, epochs ...), which is
how `agent.extraction.supported` checks that an LLM's value is the number the user wrote *for
that trait* (a class size of 6,705 is not an imbalance ratio of 6,705).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from agent.traitwords import (
    APPROX,
    CLASS_WORDS,
    ENGLISH_WORD_INTS,
    IMAGE_WORDS,
    LETTER,
    NUM,
    RANGE_TEXT,
    SCALED_WORDS,
    VAGUE_TEXT,
    WORD_INTS,
    Amount,
    amount_at,
    class_names,
    listed_names,
    to_float,
    to_int,
)

AMOUNT = (r"(?P<amount>(?<!\w)(?:" + VAGUE_TEXT + r")(?!\w)"
          + r"|" + RANGE_TEXT + r"|" + SCALED_WORDS + r"|" + NUM + r"|\d{1,3}(?: \d{3})+)")
INSTANCES = re.compile(APPROX + r"?\s*(?<![x×\d,.])" + AMOUNT + r"\s+(?:" + LETTER
                       + r"[\w'&/-]*\s+){0,3}?(?:" + IMAGE_WORDS + r")\b(?!\s+(?:per|each|par|por|"
                       r"pro|per)\s+(?:class|classe|clase|klasse))", re.IGNORECASE)
PER_CLASS = re.compile(r"(?<![x×\d,.])(" + NUM + r")\s+(?:(?:" + IMAGE_WORDS
                       + r")\s+)?(?:per|each|in each|for each|par|por|pro)\s*(?:class|classe|"
                       r"clase|klasse)?\b", re.IGNORECASE)
CLASSES = re.compile(r"\b(\d+|" + "|".join(WORD_INTS) + r")\s+(?:(?!(?:per|each|in|for|par|por|"
                     r"pro)\b)" + LETTER + r"[\w-]*\s+)?(?:"
                     + CLASS_WORDS + r")\b", re.IGNORECASE)
# "graded 0-4", "Kellgren-Lawrence scale 0-4", "stages 1 to 5": that many ordered classes
GRADES = re.compile(r"\b(?:grade[sd]?|graded|scale|levels?|stages?|scores?|severity|gradi|"
                    r"grados?|stad(?:es|ien))\b[^.;:\d]{0,40}?(?<![\d.,])(\d{1,2})\s*(?:-|–|to|"
                    r"through|à|a|bis)\s*(\d{1,2})(?![\d.,])(?!\s*(?:%|px|h\b|hours?|min|k\b|"
                    r"years?|days?|ans|años|jahre))", re.IGNORECASE)
SIZE_2D = re.compile(r"\b(\d{2,5})\s*(?:[x×]|by)\s*(\d{2,5})\b", re.IGNORECASE)
SIZE_1D = re.compile(r"\b(\d{2,5})\s*(?:px|pixels?|p[ií]xe?l(?:es|s)?|pixel)\b", re.IGNORECASE)

_LARGEST = (r"(?:largest|biggest|majority|most\s+(?:common|frequent|populated)|dominant|"
            r"max(?:imum)?\s+class|most|gr[öo](?:ß|ss)te|plus\s+grande?|m[aá]s\s+grande|"
            r"pi[uù]\s+grande|mayor|maggiore)")
_SMALLEST = (r"(?:smallest|minority|rarest|least\s+(?:common|frequent|populated)|"
             r"min(?:imum)?\s+class|fewest|kleinste|plus\s+petite?|m[aá]s\s+peque[nñ]a|"
             r"pi[uù]\s+piccola|menor|minore)")
# "class" / "grade" ... in five languages, then a verb: "the largest grade has", "die größte Klasse hat"
_LINK = (r"(?:\s+(?:class|category|one|grade|group|stage|type|klasse|gruppe|classe|clase|"
         r"catégorie|categor[ií]a))?(?:\s+(?:has|have|had|with|of|is|at|contains|holds|gets|hat|"
         r"mit|enthält|umfasst|a|compte|contient|avec|tiene|con|cuenta|ha|=|:)|\s*[=:])*\s*"
         r"(?:about|around|~|roughly|only|just|approximately|nur|etwa|ca\.|seulement|environ|"
         r"solo|s[oó]lo|unos|unas)?\s*")
_NOT_SIZE = r"(?!\d|[.,]\d|\s*k\b|\s*(?:times|x\b|×|-?fold|%|px|pixels))"
LARGEST = re.compile(r"\b" + _LARGEST + _LINK + r"(" + NUM + r")" + _NOT_SIZE, re.IGNORECASE)
SMALLEST = re.compile(r"\b" + _SMALLEST + _LINK + r"(" + NUM + r")" + _NOT_SIZE, re.IGNORECASE)
LARGEST_AFTER = re.compile(r"(" + NUM + r")\s+(?:(?:" + IMAGE_WORDS + r")\s+)?in\s+the\s+"
                           + _LARGEST + r"\b", re.IGNORECASE)
SMALLEST_AFTER = re.compile(r"(" + NUM + r")\s+(?:(?:" + IMAGE_WORDS + r")\s+)?in\s+the\s+"
                            + _SMALLEST + r"\b", re.IGNORECASE)

_RATIO_NUM = r"(\d+(?:[.,]\d+)?)"
RATIO_COLON = re.compile(r"(?<![\d:.,])" + _RATIO_NUM + r"\s*:\s*" + _RATIO_NUM + r"(?![\d:])")
RATIO_TIMES = re.compile(r"(?<![\w.,])(\d+(?:[.,]\d+)?|" + "|".join(ENGLISH_WORD_INTS) + r")\s*(?:times|x|×|-?fold)\s+(?:more|larger|"
                         r"bigger|as\s+(?:many|large|big)|the\s+(?:smallest|minority|rarest)|"
                         r"imbalance|fewer|less|smaller)", re.IGNORECASE)
RATIO_WORD = re.compile(r"\b(?:imbalance(?:\s+ratio)?|class\s+ratio|ratio)\s*(?:of|is|=|:|~|≈|"
                        r"about|around|roughly|approximately|\s)*\s*(?:1\s*:\s*)?" + _RATIO_NUM
                        + r"(?!\s*(?:%|px|images))", re.IGNORECASE)
# the classes are balanced (a description of the data, not "a balanced trade-off" or accuracy)
BALANCED = re.compile(r"\b(?:(?:perfectly|fully|roughly|well|evenly|nicely|quite|pretty|"
                      r"class(?:es)?(?:\s+are)?)\s+)?balanced\b(?!\s+(?:accuracy|trade|between|"
                      r"approach|choice|option|config|one|model|mix))|\bequal(?:ly)?[- ]sized\s+"
                      r"class|\bsame\s+number\s+(?:of\s+images\s+)?(?:in|per)\s+(?:each\s+)?class|"
                      r"\b[ée]quilibr[ée]e?s?\b|\bbalanceadas?\b|\bausgewogen\w*|\bbilanciat[ei]\b",
                      re.IGNORECASE)
UNBALANCED = re.compile(r"imbalanc|unbalanc|not\s+balanced|n't\s+balanced|d[ée]s[ée]quilibr|"
                        r"desbalance|desequilibr|unausgewogen|sbilanciat", re.IGNORECASE)
_RATIO_CONTEXT = re.compile(r"imbalanc|ratio|skew|unbalanc|proportion", re.IGNORECASE)

# A labelled class size: "3,000 normal", "200 malignant images"
_ITEM = re.compile(r"(?<![\w.,:/×-])(" + NUM + r")(?![x×]\d)\s+(" + LETTER + r"[\w'-]*)((?:\s+"
                   + LETTER + r"[\w'-]*)?)", re.IGNORECASE)
_ITEM_GAP = re.compile(r"\s*(?:,|;|/|&|\+)?\s*(?:(?:and|et|y|und|e|plus)\s+)?", re.IGNORECASE)
_NOT_A_LABEL = re.compile(
    r"^(?:" + CLASS_WORDS + r"|types?|kinds?|groups?|px|pixels?|hours?|hrs?|h|min|mins|minutes?|"
    r"seconds?|days?|weeks?|months?|years?|epochs?|gb|mb|tb|gib|k|x|times|fold|per|of|in|and|or|"
    r"with|each|more|fewer|less|total|patients?|subjects?|people|persons?|cases|sites?|hospitals?|"
    r"centers?|centres?|gpus?|cpus?|cards?|cores?|threads?|layers?|runs?|steps?|batch(?:es)?|"
    r"to|vs|a|an|the|on|for|is|are|at|by|from|heures?|horas?|stunden?|ore|minuten|minutos|"
    r"minuti|jours?|d[ií]as?|tage?|giorni|" + IMAGE_WORDS + r")$", re.IGNORECASE)
_IMAGE_WORD = re.compile(r"\b(?:" + IMAGE_WORDS + r")\b", re.IGNORECASE)
_CLASS_WORD = re.compile(r"(?:" + CLASS_WORDS + r"|groups?)", re.IGNORECASE)
COUNT_LIST = re.compile(r"(?:class\s+(?:sizes|counts)|class(?:es)?\s+(?:have|has|contain|with|of|are)|(?:images\s+|counts?\s+)?per\s+class|"
                        r"class\s+distribution)\s*(?:are|is|of|:|=|-)?\s*(" + NUM
                        + r"(?:\s*(?:,|/|;|and|&)\s*" + NUM + r")+)", re.IGNORECASE)
COUNT_LIST_BEFORE = re.compile(r"(?<![\w.,])(" + NUM + r"(?:\s*(?:,|/|;|and|&)\s*" + NUM
                               + r")+)\s+(?:images\s+)?(?:per|in\s+each|for\s+each)\s+class|"
                               r"(?<![\w.,])(" + NUM + r"(?:\s*(?:,|/|;)\s*" + NUM + r")+\s*(?:,\s*)?"
                               r"(?:and|&)\s*" + NUM + r")\s+(?:" + IMAGE_WORDS + r")\b",
                               re.IGNORECASE)


@dataclass
class Counts:
    """What a message says about the dataset's size and its classes (`read_counts`)."""

    instances: Amount | None = None
    per_class: int | None = None
    n_classes: int | None = None
    names: list[str] | None = None
    largest: int | None = None
    smallest: int | None = None
    ratio: float | None = None  # written as a ratio ("1:20", "20 times more", "ratio 20")
    balanced: bool = False  # "perfectly balanced", "balanced classes": an imbalance of 1
    counts: list[int] | None = None  # per-class sizes listed
    roles: list[tuple[int, int, str, float]] = field(default_factory=list)  # start, end, role, value

    def traits(self) -> dict[str, Any]:
        """The traits read: the total, the classes, the imbalance (a ratio as written, else
        largest / smallest; never from a class size alone) and the listed class sizes."""
        found: dict[str, Any] = {}
        if self.instances is not None:
            found["n_instances"] = self.instances.value
        if self.n_classes is not None:
            found["n_classes"] = self.n_classes
        if self.ratio is not None:
            found["imbalance_ratio"] = round_ratio(self.ratio)
        elif self.extremes_ratio is not None:
            found["imbalance_ratio"] = self.extremes_ratio
        elif self.balanced and self.counts is None:
            found["imbalance_ratio"] = 1.0
        if self.counts is not None:
            found["class_counts"] = self.counts
        elif self.per_class and self.n_classes and "n_instances" not in found:
            found["n_instances"] = self.per_class * self.n_classes  # "500 per class, 4 classes"
            found.setdefault("imbalance_ratio", 1.0)
        return found

    @property
    def extremes_ratio(self) -> float | None:
        if self.largest and self.smallest and self.largest >= self.smallest > 0:
            return round_ratio(self.largest / self.smallest)
        return None


def round_ratio(ratio: float) -> float:
    """58.304 -> 58.0, 2.94 -> 2.9: one decimal under 10, whole numbers above."""
    return float(round(ratio, 1) if ratio < 10 else round(ratio))


def _labelled_counts(text: str) -> tuple[list[int], list[tuple[int, int]]] | None:
    items = []
    for m in _ITEM.finditer(text):
        label = m.group(2)
        if _NOT_A_LABEL.match(label) or (to_int(m.group(1)) or 0) < 1:
            continue
        if _CLASS_WORD.fullmatch(m.group(3).strip()):
            continue  # "8 cell types": a number of classes, not a class of 8 images
        items.append(m)
    best: list[re.Match[str]] = []
    run: list[re.Match[str]] = []
    for m in items:
        if run and _ITEM_GAP.fullmatch(text[run[-1].end():m.start()]):
            run.append(m)
        else:
            run = [m]
        if len(run) > len(best):
            best = list(run)
    if len(best) >= 3 and _IMAGE_WORD.search(best[0].group(0)) and not any(
            _IMAGE_WORD.search(m.group(0)) for m in best[1:]):
        best = best[1:]  # "2,000 chest x-rays, 500 normal, 700 pneumonia": the first is the total
    if len(best) < 2:
        return None
    return [to_int(m.group(1)) or 0 for m in best], [m.span(1) for m in best]


_UNIT_ROLE = re.compile(
    r"\s*(?:(?P<duration>-?(?:h|hrs?|hours?|min|mins|minutes?|s|secs?|seconds?|days?|heures?|"
    r"horas?|stunden?|minuten|minutos|minuti|ore|jours?|d[ií]as?|giorni)\b)|(?P<epochs>epochs?\b)"
    r"|(?P<size>(?:px|pixels?|p[ií]xe?l(?:es|s)?)\b|[x×]\s*\d)|(?P<memory>(?:gb|gib|mb|tb)\b)"
    r"|(?P<pct>%|percent\b)|(?P<ratio>(?:times|-?fold)\b)|(?P<classes>(?:" + CLASS_WORDS
    + r")\b))", re.IGNORECASE)
_ROLE_BEFORE = re.compile(r"(?:(?P<config>batch(?:\s+size)?|lr|learning\s+rate|seed|epochs?|"
                          r"top-?\d*|rank)|(?P<device>rtx|gtx|geforce|quadro|tesla|titan|"
                          r"radeon|rx|m\d)|(?P<size>resolution|size|height|width|px))"
                          r"\s*(?:of|is|=|:)?\s*$", re.IGNORECASE)
NUMBER = re.compile(r"(?<![\w.,-])(" + NUM + r")(?![\w])|(?<=[x×])(\d{2,5})\b", re.IGNORECASE)


SCALED_RANGE = re.compile(r"\b(\d{1,3})\s*(?:or|to|-|–)\s*(\d{1,3})\s*(thousand|hundred|k)\b",
                           re.IGNORECASE)


def scaled_range(m: re.Match[str]) -> str:
    """"3 or 4 thousand" -> "3000-4000" (the same length is not kept: spans are re-read)."""
    scale = 100 if m.group(3).lower() == "hundred" else 1000
    return f"{int(m.group(1)) * scale}-{int(m.group(2)) * scale}"


def vague_count(text: str) -> int | None:
    """The number of images a message gives as a vague or scaled amount without an image word
    ("Hmm, 3 or 4 thousand, I never counted", "a few thousand"): its usual reading, or None. Read
    whatever question it answers, as long as the count is still unknown."""
    if (m := VAGUE_AMOUNT.search(text)) is not None:
        return amount_at(m.group(0)).value  # type: ignore[union-attr]
    if (m := SCALED_RANGE.search(text)) is not None:  # "3 or 4 thousand": the middle, 3,500
        scale = 100 if m.group(3).lower() == "hundred" else 1000
        low, high = int(m.group(1)) * scale, int(m.group(2)) * scale
        return (low + high) // 2 if 0 < low < high else None
    return None


VAGUE_AMOUNT = re.compile(r"(?<!\w)(?:" + VAGUE_TEXT + r")(?!\w)(?!\s+(?:of\s+)?(?:hours?|minutes?|"
                          r"epochs?|dollars?|euros?|px|pixels?|years?))", re.IGNORECASE)


def read_counts(text: str, pending: str | None = None) -> Counts:
    """What `text` says about the dataset's size and classes (see the module docstring)."""
    text = SCALED_RANGE.sub(scaled_range, text)
    out = Counts()
    roles: list[tuple[int, int, str, float]] = []

    def role(span: tuple[int, int], name: str, value: float) -> None:
        try:
            roles.append((span[0], span[1], name, float(value)))
        except OverflowError:  # a run of hundreds of digits: no trait reads it
            roles.append((span[0], span[1], name, float("inf")))

    if (m := PER_CLASS.search(text)) is not None:
        out.per_class = to_int(m.group(1))
        role(m.span(1), "count", out.per_class or 0)
    if (m := CLASSES.search(text)) is not None:
        out.n_classes = to_int(m.group(1))
        role(m.span(1), "classes", out.n_classes or 0)
    elif (m := GRADES.search(text)) is not None and 0 <= int(m.group(1)) < int(m.group(2)) <= 10:
        out.n_classes = int(m.group(2)) - int(m.group(1)) + 1
        role(m.span(1), "grade", int(m.group(1)))
        role(m.span(2), "grade", int(m.group(2)))
    elif re.search(r"\bbinary\b|\bbinaire\b|\bbinari[oa]\b|\bbinär\b|\byes\s*(?:/|or)\s*no\b|"
                   r"\bpresent\s*(?:/|or)\s*absent\b", text, re.IGNORECASE):
        out.n_classes = 2
    for pattern, attr in ((LARGEST, "largest"), (LARGEST_AFTER, "largest"),
                          (SMALLEST, "smallest"), (SMALLEST_AFTER, "smallest")):
        if getattr(out, attr) is None and (m := pattern.search(text)) is not None:
            setattr(out, attr, to_int(m.group(1)))
            role(m.span(1), attr, getattr(out, attr) or 0)
    if out.largest is not None and out.smallest is not None and out.largest < out.smallest:
        out.largest = out.smallest = None  # "most ... 30" is not a class size after all
    for pattern in (RATIO_WORD, RATIO_TIMES):
        if out.ratio is None and (m := pattern.search(text)) is not None:
            value = ENGLISH_WORD_INTS.get(m.group(1).lower()) or to_float(m.group(1))
            if value is not None and value >= 1:
                out.ratio = value
                role(m.span(1), "ratio", value)
    if out.ratio is None:
        for m in RATIO_COLON.finditer(text):
            a, b = to_float(m.group(1)), to_float(m.group(2))
            if not a or not b:
                continue
            if min(a, b) == 1 or _RATIO_CONTEXT.search(text):
                out.ratio = max(a, b) / min(a, b)
                role(m.span(1), "ratio", a)
                role(m.span(2), "ratio", b)
                break
    out.balanced = bool(BALANCED.search(text)) and not UNBALANCED.search(text) and bool(
        out.n_classes or INSTANCES.search(text) or re.search(CLASS_WORDS, text, re.IGNORECASE))
    if (m := COUNT_LIST.search(text) or COUNT_LIST_BEFORE.search(text)) is not None:
        group = 2 if m.re is COUNT_LIST_BEFORE and m.group(1) is None else 1
        found = [(n, to_int(n.group(0))) for n in re.finditer(NUM, m.group(group))]
        if all(v for _, v in found) and len(found) >= 2:
            out.counts = [int(v or 0) for _, v in found]
            for n, v in found:
                role((m.start(group) + n.start(), m.start(group) + n.end()), "count", v or 0)
    if out.counts is None and (labelled := _labelled_counts(text)) is not None:
        out.counts, spans = labelled
        for span, value in zip(spans, out.counts):
            role(span, "count", value)
    for m in INSTANCES.finditer(text):
        if any(s <= m.start("amount") < e or m.start("amount") <= s < m.end("amount")
               for s, e, _, _ in roles):
            continue  # "the biggest class has 6705 images": a class size, not the total
        amount = amount_at(m.group("amount"))
        if amount is not None:
            approx = bool(re.match(APPROX, text[m.start():m.start("amount")].strip() or "-",
                                   re.IGNORECASE))
            out.instances = Amount(amount.value, amount.lo, amount.hi, amount.vague, approx)
            role(m.span("amount"), "instances", amount.value)
            break
    if out.n_classes is None and (names := class_names(text) if pending == "n_classes"
                                  else listed_names(text)) is not None:
        out.names, out.n_classes = names, len(names)
    for m in SIZE_2D.finditer(text):
        role(m.span(1), "size", int(m.group(1)))
        role(m.span(2), "size", int(m.group(2)))
    for m in SIZE_1D.finditer(text):
        role(m.span(1), "size", int(m.group(1)))
    for m in NUMBER.finditer(text):
        start, end = m.span(m.lastindex or 0)
        if any(s <= start < e for s, e, _, _ in roles):
            continue
        value = to_int(m.group(m.lastindex or 0))
        if value is None:
            continue
        after, before = _UNIT_ROLE.match(text, end), _ROLE_BEFORE.search(text[max(0, start - 24):start])
        name = "other"
        if after is not None:
            name = after.lastgroup or "other"
        elif before is not None:
            name = before.lastgroup or "other"
        role((start, end), name, value)
    out.roles = sorted(roles)
    return out


__all__ = ["AMOUNT", "CLASSES", "vague_count", "INSTANCES", "NUM", "SIZE_1D", "SIZE_2D", "Amount", "Counts",
           "amount_at", "class_names", "read_counts", "round_ratio", "to_int"]
