"""Screenplay rules, each defined once: what a scene heading looks like (also a label by rule, certain
enough from the text alone to beat a model's guess, never a person's), and a speaker's name in a cue."""

from __future__ import annotations

import re

# INT./EXT./EST./I/E at the start of a printed script's line, after an optional scene number ("12", "A12B.").
# The rule label and the heuristic splitter read this one; Fountain files follow their format's own syntax
# (labeling/ingest/formats/fountain.py) and the line model has its own feature for it.
HEADING = re.compile(
    r"^\s*(?:[A-Z]?\d{1,4}[A-Z]{0,2}\.?\s+)?(?:INT|EXT|I/E|INT\.?/EXT|EXT\.?/INT|EST)[\.\s/]", re.IGNORECASE
)


def looks_like_heading(text: str) -> bool:
    """A scene heading by rule: INT./EXT. at the start (after an optional scene number), mostly uppercase."""
    if not HEADING.match(text or ""):
        return False
    letters = [c for c in text if c.isalpha()]
    return bool(letters) and sum(c.isupper() for c in letters) / len(letters) > 0.7


def rule_label(text: str) -> str | None:
    return "scene_heading" if looks_like_heading(text) else None


_PARENTHESES = re.compile(r"\([^)]*\)")
_CONTINUED = re.compile(r"\s*\bCONT'?D\b\.?\s*$", re.IGNORECASE)


def character_name(cue: str) -> str:
    """The speaker of a cue without extensions, upper-case: "Tim (V.O.) (CONT'D)" → "TIM", "KIT CONT'D:" → "KIT"."""
    name = _PARENTHESES.sub(" ", cue or "").strip().rstrip(":")
    return " ".join(_CONTINUED.sub("", name).split()).upper()
