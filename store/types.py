"""Domain types shared by every layer: line labels, label schemes, typed records.

`store/` is the lowest floor, so these live here and everything above imports them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class LineLabel(str, enum.Enum):
    """The seven line labels of DESIGN.md, in their canonical order (class index = position)."""

    SCENE_HEADING = "scene_heading"
    ACTION = "action"
    CHARACTER = "character"
    DIALOGUE = "dialogue"
    PARENTHETICAL = "parenthetical"
    TRANSITION = "transition"
    OTHER = "other"

    @classmethod
    def parse(cls, name: str) -> "LineLabel":
        """Return the label called `name` (case-insensitive), or raise UnknownLabelError."""
        key = (name or "").strip().lower()
        for label in cls:
            if label.value == key:
                return label
        raise UnknownLabelError(
            f"unknown label {name!r}: use one of {', '.join(l.value for l in cls)}"
        )


LABELS: tuple[str, ...] = tuple(label.value for label in LineLabel)
LABEL_INDEX: dict[str, int] = {name: i for i, name in enumerate(LABELS)}

# The study's coarse scheme (S = description incl. headings/transitions, C, D incl. parentheticals, O).
SEED_SCHEME: dict[str, str] = {
    "scene_heading": "S",
    "action": "S",
    "character": "C",
    "dialogue": "D",
    "parenthetical": "D",
    "transition": "S",
    "other": "O",
}

# MovieParse tags → our labels (M, title-page metadata, is `other`).
MOVIEPARSE_TAGS: dict[str, str] = {
    "S": "scene_heading",
    "N": "action",
    "C": "character",
    "D": "dialogue",
    "E": "parenthetical",
    "T": "transition",
    "O": "other",
    "M": "other",
}

# The breakdown tags a sequence is offered (people may add their own): what the app lists and the tag
# models learn. ("destruction" covers explosions.)
BREAKDOWN_TAGS: tuple[str, ...] = ("crowd", "water", "fire", "vehicles", "creatures", "destruction", "weather",
                                   "magic")

LABEL_SOURCES = ("human", "imported", "model", "rule")


class ScriptlabelError(Exception):
    """Base of every error a user can act on; the message says what to do."""


class UnknownLabelError(ScriptlabelError, ValueError):
    pass


class NotFoundError(ScriptlabelError, LookupError):
    pass


@dataclass(frozen=True)
class Line:
    """One stored line (DESIGN.md "One line, as stored"), before or after it has an id."""

    line_no: int
    page: int
    text: str
    x0: float
    y0: float
    x1: float
    y1: float
    indent: float
    gap_before: float
    source_line_no: int | None = None
    ocr_confidence: float | None = None
    line_id: int | None = None
    script_id: int | None = None
    sequence_id: int | None = None
    # A label that came with the source (Fountain/FDX element type), stored as `imported`.
    imported_label: str | None = None


@dataclass(frozen=True)
class PageInfo:
    """One page of a script: where its image is and how its text was read."""

    page: int
    width: float
    height: float
    image_path: str | None
    dpi: int | None
    text_source: str  # "text_layer" | "ocr" | "text"


@dataclass(frozen=True)
class Sequence:
    sequence_id: int
    script_id: int
    code: str
    title: str
    first_line_no: int
    last_line_no: int
    lines: int


@dataclass(frozen=True)
class ModelVersion:
    version: int
    kind: str  # "lines" | "complexity"
    path: str
    created_at: str
    metrics: dict = field(default_factory=dict)
    is_current: bool = False
