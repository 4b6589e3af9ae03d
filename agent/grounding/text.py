"""Sentences and clauses of an answer, as spans, for the meaning checks."""

from __future__ import annotations

import re

# A sentence ends at a line break, '!', '?', ';' or a '.' that is not inside a number or a name
# ("72.7", "vit_base_patch16_224.dino") or an abbreviation ("vs.", "e.g.", "i.e.").
_SENTENCE = re.compile(r"(?:[^\n.!?;]|\.(?=[A-Za-z0-9_])|(?<=\bvs)\.|(?<=\be\.g)\.|(?<=\bi\.e)\.)+")
# Where a sentence turns to another subject ("X is faster, but Y is more accurate").
_CLAUSE = re.compile(r",?\s+(?:but|while|whereas|although|though|however|unlike|yet|whilst)\b",
                     re.IGNORECASE)
# A heading, a bold label or a line ending with ':' ("**More accurate alternative:**").
LABEL_LINE = re.compile(r"^\s*(?:#+\s*.*|(?:[-*•]\s*)?\*\*[^*\n]*\*\*\s*:?\s*|[^\n]*:\s*(?:\*\*)?\s*)$")


def sentences(text: str) -> list[tuple[int, int]]:
    return [(m.start(), m.end()) for m in _SENTENCE.finditer(text) if m.group(0).strip()]


def clauses(text: str, begin: int, end: int) -> list[tuple[int, int]]:
    """The clauses of the sentence text[begin:end]."""
    out, start = [], begin
    for m in _CLAUSE.finditer(text, begin, end):
        out.append((start, m.start()))
        start = m.start()
    out.append((start, end))
    return out


def clause_spans(text: str) -> list[tuple[int, int]]:
    return [c for s, e in sentences(text) for c in clauses(text, s, e)]


def line_span(text: str, pos: int) -> tuple[int, int]:
    start = text.rfind("\n", 0, pos) + 1
    end = text.find("\n", pos)
    return start, len(text) if end < 0 else end


def block_after(text: str, line_end: int) -> tuple[int, int]:
    """The lines after a label line up to the next label line or blank line (a heading's body)."""
    pos = line_end + 1
    while pos < len(text) and text[pos] == "\n":  # blank lines right after the label
        pos += 1
    start = pos
    while pos < len(text):
        end = text.find("\n", pos)
        end = len(text) if end < 0 else end
        line = text[pos:end]
        if not line.strip() or LABEL_LINE.match(line):
            return start, pos
        pos = end + 1
    return start, len(text)


__all__ = ["LABEL_LINE", "block_after", "clause_spans", "clauses", "line_span", "sentences"]
