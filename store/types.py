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

# A project's label scheme (store/scheme.py). The Label page's keys of the full scheme:
BUILTIN_KEYS: dict[str, str] = {
    "scene_heading": "h", "action": "a", "character": "c", "dialogue": "d", "parenthetical": "p",
    "transition": "t", "other": "o",
}
BUILTIN_DISPLAY: dict[str, str] = {label: label.replace("_", " ") for label in LABELS}

# name, key, display, built-in labels covered. The seed scheme is the study's (DESIGN.md "seed scheme").
PRESETS: dict[str, tuple[tuple[str, str, str, tuple[str, ...]], ...]] = {
    "full": tuple((label, BUILTIN_KEYS[label], BUILTIN_DISPLAY[label], (label,)) for label in LABELS),
    "seed": (
        ("S", "a", "scene/description", ("scene_heading", "action", "transition")),
        ("C", "c", "character", ("character",)),
        ("D", "d", "dialog", ("dialogue", "parenthetical")),
        ("O", "o", "other", ("other",)),
    ),
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

# accepted: a confident suggestion a person accepted in bulk ("accept every suggestion above p") — not a
# person's own label, never imported as one.
LABEL_SOURCES = ("human", "imported", "accepted", "model", "rule")


class ScriptlabelError(Exception):
    """Base of every error a user can act on; the message says what to do."""


class UnknownLabelError(ScriptlabelError, ValueError):
    pass


class NotFoundError(ScriptlabelError, LookupError):
    pass


ANNOTATOR_MAX_CHARS = 80  # the sign-in names' limit too (store.accounts)


class BadAnnotatorError(ScriptlabelError, ValueError):
    """An annotator name that cannot be stored: empty, too long or with control characters."""


def check_annotator(name) -> str:
    """The annotator's name as stored: trimmed, 1-80 characters, no control characters (one rule for the
    command line, the labeling view's sync and imports)."""
    text = str(name if name is not None else "").strip()
    if not text:
        raise BadAnnotatorError(f"the annotator name is empty: give a name of 1-{ANNOTATOR_MAX_CHARS} characters")
    if len(text) > ANNOTATOR_MAX_CHARS:
        raise BadAnnotatorError(f"the annotator name is {len(text):,} characters long: give a name of "
                                f"1-{ANNOTATOR_MAX_CHARS} characters")
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise BadAnnotatorError("the annotator name holds a control character (a line break, a tab, NUL): give a "
                                f"name of 1-{ANNOTATOR_MAX_CHARS} printable characters")
    return text


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
    flag: str | None = None  # a page that gave no lines: blank | no_text | unreadable | timed_out
    flag_note: str = ""  # why, or what was done to read it (turned, levelled, two pages side by side)


@dataclass(frozen=True)
class FlaggedPage:
    """A page stored without lines, and why: a person can look at it and have it read again."""

    script_id: int
    page: int
    flag: str
    note: str
    image_path: str | None


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
    promotion: dict | None = None  # why it is (or is not) current: decision, reason, the paired comparison


class StaleModelError(ScriptlabelError):
    """The model version a person saw is no longer the current one (or a script's suggestions lag behind)."""


@dataclass(frozen=True)
class AcceptPreview:
    """What "accept every suggestion at or above `above`" would do on a script (or one page of it)."""

    script_id: int
    page: int | None
    above: float
    model_version: int  # the line model whose suggestions these are (0: the shipped base model)
    lines: int
    expected_errors: float  # sum of 1 - p over the lines: how many of them are likely wrong
    by_label: dict = field(default_factory=dict)
    line_ids: tuple[int, ...] = ()
    skipped_rule: int = 0  # lines a rule labels differently (INT./EXT.): left alone

    def as_json(self) -> dict:
        return {"script_id": self.script_id, "page": self.page, "above": self.above,
                "model_version": self.model_version, "lines": self.lines,
                "expected_errors": round(self.expected_errors, 3), "by_label": dict(self.by_label),
                "skipped_rule": self.skipped_rule}


@dataclass(frozen=True)
class AcceptBatch:
    """One stored bulk-accept (or its undo): `status` is stored, duplicate, undone or already_undone."""

    batch_id: str
    status: str
    script_id: int
    page: int | None
    above: float
    model_version: int
    lines: int
    expected_errors: float
    annotator: str
    created_at: str
    undone_at: str | None = None

    def as_json(self) -> dict:
        return {"batch_id": self.batch_id, "status": self.status, "script_id": self.script_id, "page": self.page,
                "above": self.above, "model_version": self.model_version, "lines": self.lines,
                "expected_errors": round(self.expected_errors, 3), "annotator": self.annotator,
                "created_at": self.created_at, "undone_at": self.undone_at}


@dataclass(frozen=True)
class SequenceEdit:
    """One split or merge of sequences, stored so it can be shown and undone: `sequence_id` is the sequence
    acted on (it stays), `other_sequence_id` the one the edit made (split) or absorbed (merge)."""

    edit_id: int
    script_id: int
    kind: str  # split | merge
    sequence_id: int
    other_sequence_id: int
    at_line_no: int  # split: the new sequence's first line; merge: the absorbed sequence's first line
    code: str
    other_code: str
    other_title: str
    annotator: str
    created_at: str
    undone_at: str | None = None
    undone_by: str | None = None

    def describe(self) -> str:
        """What happened, in the words a person reads: split sq0050 at line 52 → sq0050A “untitled”."""
        title = self.other_title or "untitled"
        if self.kind == "split":
            return f"split {self.code} at line {self.at_line_no} → {self.other_code} “{title}”"
        return f"merged {self.other_code} “{title}” (from line {self.at_line_no}) into {self.code}"

    def as_json(self) -> dict:
        return {"edit_id": self.edit_id, "script_id": self.script_id, "kind": self.kind,
                "sequence_id": self.sequence_id, "other_sequence_id": self.other_sequence_id,
                "at_line_no": self.at_line_no, "code": self.code, "other_code": self.other_code,
                "other_title": self.other_title, "annotator": self.annotator, "created_at": self.created_at,
                "undone_at": self.undone_at, "undone_by": self.undone_by, "text": self.describe()}
