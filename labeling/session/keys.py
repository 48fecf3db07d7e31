"""The labeling keyboard: one key per label, the same on the Label page's view and the Script page."""

from __future__ import annotations

LABEL_KEYS: dict[str, str] = {
    "h": "scene_heading",
    "a": "action",
    "c": "character",
    "d": "dialogue",
    "p": "parenthetical",
    "t": "transition",
    "o": "other",
}
