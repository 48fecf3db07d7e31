"""Labels by rule: what is certain enough from the text alone to beat a model's guess (never a person)."""

from __future__ import annotations

import re

_HEADING = re.compile(
    r"^\s*(?:[A-Z]?\d{1,4}[A-Z]{0,2}\.?\s+)?(?:INT|EXT|I/E|INT\.?/EXT|EXT\.?/INT|EST)[\.\s/]", re.IGNORECASE
)


def looks_like_heading(text: str) -> bool:
    """A scene heading by rule: INT./EXT. at the start (after an optional scene number), mostly uppercase."""
    if not _HEADING.match(text or ""):
        return False
    letters = [c for c in text if c.isalpha()]
    return bool(letters) and sum(c.isupper() for c in letters) / len(letters) > 0.7


def rule_label(text: str) -> str | None:
    return "scene_heading" if looks_like_heading(text) else None
