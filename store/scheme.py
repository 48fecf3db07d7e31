"""A project's label scheme: the classes people label with, their keys, and which built-in labels each covers.

The seven built-in labels (`store.types.LABELS`) are what the shipped model knows. A project reads them
through its scheme: each built-in label belongs to exactly one class — its own (the `full` scheme), or a
class it is merged into (`S` of the seed scheme covers scene_heading, action and transition) — and a
project may add classes of its own (`shot`, `super`, `act_break`), learned from people's labels alone.

Labels are stored as pressed and never rewritten: a merge or un-merge only changes how they *read*
(`Scheme.class_of`), so un-merging restores every label of a built-in exactly. Every change is one
transaction with its audit record (before/after) in `audit_log`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlite_utils import Database

from store.db import immediate, now
from store.types import (  # noqa: F401 (the presets are re-exported: callers read them from here)
    BUILTIN_DISPLAY, BUILTIN_KEYS, LABELS, PRESETS, NotFoundError, ScriptlabelError, UnknownLabelError)

if TYPE_CHECKING:  # numpy only where probabilities are projected: light commands never load it
    import numpy as np

NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,31}$")


class SchemeError(ScriptlabelError, ValueError):
    """A scheme change that cannot be made as asked; the message says what to do instead."""


@dataclass(frozen=True)
class SchemeClass:
    name: str
    key: str
    display: str
    members: tuple[str, ...]  # built-in labels it covers (its own name first when it is a built-in)
    position: int = 0

    @property
    def learned_only(self) -> bool:
        """A class of the project's own (no built-in label behind it): only people's labels teach it."""
        return not self.members

    def as_json(self) -> dict:
        return {"name": self.name, "key": self.key, "display": self.display, "merges": list(self.members),
                "new": self.learned_only}


@dataclass(frozen=True)
class Scheme:
    classes: tuple[SchemeClass, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.classes)

    @property
    def keys(self) -> dict[str, str]:
        """key → class name, in the scheme's order (what the Label page and the Script page offer)."""
        return {c.key: c.name for c in self.classes}

    @property
    def titles(self) -> dict[str, str]:
        return {c.name: c.display for c in self.classes}

    @property
    def is_full(self) -> bool:
        """Every built-in label is its own class and there is no other class: labels read as stored."""
        return self.names == LABELS and all(c.members == (c.name,) for c in self.classes)

    def class_map(self) -> dict[str, str]:
        """Built-in label → the class it is merged into, for those not their own class (the adapter's
        `ClassScheme.class_map`)."""
        return {label: self.class_of(label) for label in LABELS if self.class_of(label) != label}

    def get(self, name: str) -> SchemeClass | None:
        folded = (name or "").strip().lower()
        return next((c for c in self.classes if c.name.lower() == folded), None)

    def class_of(self, label: str | None) -> str | None:
        """The class a stored label (or a model's class) reads as; None for a name the scheme does not know."""
        if label is None or label != label:
            return None
        mapping = self._mapping()
        return mapping.get(str(label).lower())

    def _mapping(self) -> dict[str, str]:
        cached = self.__dict__.get("_map")
        if cached is None:
            cached = {}
            for c in self.classes:
                cached[c.name.lower()] = c.name
                for member in c.members:
                    cached[member.lower()] = c.name
            object.__setattr__(self, "_map", cached)
        return cached

    def parse(self, name: str) -> str:
        """The value to store for a label a person gave: a class of the scheme (canonical spelling) or a
        built-in label (read through the scheme). Raises UnknownLabelError listing the scheme's classes."""
        text = (str(name) if name is not None else "").strip()
        found = self.get(text)
        if found is not None:
            return found.name
        if text.lower() in LABELS:
            return text.lower()
        raise UnknownLabelError(f"unknown label {text[:40]!r}: use one of {', '.join(self.names)}")

    def accepts(self, name) -> bool:
        try:
            self.parse(name)
        except UnknownLabelError:
            return False
        return True

    def map_labels(self, labels):
        """Stored labels (a pandas Series) read as the scheme's classes (unknown names stay as stored)."""
        return labels.map(self._read)

    def map_values(self, labels) -> list:
        """`map_labels` for a plain sequence of stored labels."""
        return [self._read(v) for v in labels]

    def _read(self, value):
        return value if value is None or value != value else self._mapping().get(str(value).lower(), value)

    def projection(self, from_classes) -> np.ndarray:
        """(len(from_classes), len(classes)) 0/1 matrix: a model's probabilities @ it = the scheme's
        (a merged class gets the sum of its members'); a class the scheme does not know is dropped."""
        import numpy as np

        out = np.zeros((len(from_classes), len(self.classes)), dtype=np.float64)
        index = {name: i for i, name in enumerate(self.names)}
        for row, name in enumerate(from_classes):
            target = self.class_of(name)
            if target is not None:
                out[row, index[target]] = 1.0
        return out

    def project(self, proba: np.ndarray, from_classes) -> np.ndarray:
        """A model's probabilities over `from_classes` as probabilities over the scheme's classes."""
        import numpy as np

        proba = np.asarray(proba, dtype=np.float64)
        if tuple(from_classes) == self.names:
            return proba
        out = proba @ self.projection(from_classes)
        total = out.sum(axis=1, keepdims=True)
        uniform = np.full_like(out, 1.0 / max(out.shape[1], 1))
        return np.where(total > 0, out / np.where(total > 0, total, 1.0), uniform)

    def project_row(self, proba, from_classes) -> list[float]:
        """`project` for one line's probabilities, in plain Python (the CLI's queue loads no numpy)."""
        proba = [float(p) for p in proba]
        if tuple(from_classes) == self.names:
            return proba
        index = {name: i for i, name in enumerate(self.names)}
        out = [0.0] * len(self.classes)
        for p, name in zip(proba, from_classes):
            target = self.class_of(name)
            if target is not None:
                out[index[target]] += p
        total = sum(out)
        return [p / total for p in out] if total > 0 else [1.0 / max(len(out), 1)] * len(out)

    def as_json(self) -> dict:
        return {"classes": [c.as_json() for c in self.classes]}


# --- reading ----------------------------------------------------------------------------------

def load_scheme(db: Database) -> Scheme:
    """The project's scheme as stored (the full scheme on a database made before schemes existed)."""
    if "scheme_classes" not in db.table_names():
        return preset_scheme("full")
    rows = list(db.query("SELECT name, key, display, position FROM scheme_classes ORDER BY position, name"))
    merges: dict[str, list[str]] = {}
    for row in db.query("SELECT builtin, class_name FROM scheme_merges ORDER BY builtin"):
        merges.setdefault(row["class_name"].lower(), []).append(row["builtin"])
    classes = []
    for row in rows:
        own = (row["name"],) if row["name"] in LABELS else ()
        extra = sorted(merges.get(row["name"].lower(), []), key=LABELS.index)
        classes.append(SchemeClass(row["name"], row["key"], row["display"], own + tuple(extra), row["position"]))
    return Scheme(tuple(classes)) if classes else preset_scheme("full")


def preset_scheme(preset: str) -> Scheme:
    if preset not in PRESETS:
        raise SchemeError(f"unknown scheme {preset!r}: use one of {', '.join(PRESETS)}")
    return Scheme(tuple(SchemeClass(n, k, d, m, i) for i, (n, k, d, m) in enumerate(PRESETS[preset])))


def suggestions_behind(db: Database, scheme: Scheme | None = None) -> bool:
    """Whether the newest suggestions were made over other classes than the scheme's (a class added or
    merged since the model was trained): they still read through the scheme, but a retrain is needed for
    the model to suggest the new classes."""
    scheme = scheme or load_scheme(db)
    row = db.execute("SELECT classes FROM predictions ORDER BY rowid DESC LIMIT 1").fetchone()
    if row is None:
        return False
    return tuple(json.loads(row[0]) if row[0] else LABELS) != scheme.names


def class_label_counts(db: Database) -> dict[str, int]:
    """Class (or built-in label) name, lower-case → label events (set, any source) that carry it."""
    return {r["name"]: r["n"] for r in db.query(
        "SELECT lower(label) AS name, COUNT(*) AS n FROM label_events WHERE action = 'set' GROUP BY lower(label)")}


# --- changing it: one transaction each, with its audit record ---------------------------------

def _write(db: Database, scheme: Scheme) -> None:
    db.execute("DELETE FROM scheme_merges")
    db.execute("DELETE FROM scheme_classes")
    stamp = now()
    for position, c in enumerate(scheme.classes):
        db.execute("INSERT INTO scheme_classes(name, key, display, position, created_at) VALUES (?,?,?,?,?)",
                   [c.name, c.key, c.display, position, stamp])
    for c in scheme.classes:
        for member in c.members:
            if member != c.name:
                db.execute("INSERT INTO scheme_merges(builtin, class_name) VALUES (?,?)", [member, c.name])


def _check(scheme: Scheme, reserved: frozenset[str]) -> None:
    """The invariants every stored scheme keeps."""
    seen_keys: dict[str, str] = {}
    seen_names: set[str] = set()
    for c in scheme.classes:
        if not NAME.match(c.name):
            raise SchemeError(f"class name {c.name[:40]!r}: use a letter then letters, digits or _ (at most 32)")
        if c.name.lower() in seen_names:
            raise SchemeError(f"there is already a class {c.name!r}: pick another name")
        if c.name.lower() in LABELS and c.name not in LABELS:
            raise SchemeError(f"{c.name!r} is a built-in label: write it {c.name.lower()!r}")
        seen_names.add(c.name.lower())
        key = c.key
        if not isinstance(key, str) or len(key) != 1 or not (key.isascii() and (key.islower() or key.isdigit())):
            raise SchemeError(f"key {str(key)[:10]!r} for {c.name}: use one lower-case letter or digit")
        if key in reserved:
            raise SchemeError(f"key {key!r} is taken by the Label page ({', '.join(sorted(reserved))} are): "
                              f"pick another key for {c.name}")
        if key in seen_keys:
            raise SchemeError(f"key {key!r} already labels {seen_keys[key]}: pick another key for {c.name}")
        seen_keys[key] = c.name
        if not c.display.strip() or len(c.display) > 40:
            raise SchemeError(f"display name of {c.name}: give 1-40 characters")
    covered = [m for c in scheme.classes for m in c.members]
    missing = [label for label in LABELS if label not in covered]
    if missing or len(covered) != len(set(covered)):
        raise SchemeError(f"every built-in label must belong to exactly one class ({', '.join(missing)} do not)")


def _audit(db: Database, actor: str, action: str, before: Scheme, after: Scheme, extra: dict) -> None:
    detail = json.dumps({**extra, "before": before.as_json(), "after": after.as_json()}, ensure_ascii=False)
    db.execute("INSERT INTO audit_log(at, actor, action, script_id, detail) VALUES (?,?,?,?,?)",
               [now(), actor or "anonymous", action, None, detail[:20000]])


def change_scheme(db: Database, change, *, actor: str, action: str, reserved: frozenset[str],
                  detail: dict | None = None) -> Scheme:
    """Apply `change(current_scheme, label_counts) -> new_scheme` in one write transaction (read, check,
    write, audit); returns the new scheme. A change that leaves the scheme as it was writes nothing."""
    with immediate(db):
        before = load_scheme(db)
        after = change(before, class_label_counts(db))
        _check(after, reserved)
        if after.as_json() != before.as_json():
            _write(db, after)
            _audit(db, actor, action, before, after, detail or {})
    return after


def class_or_error(scheme: Scheme, name: str) -> SchemeClass:
    found = scheme.get(name)
    if found is None:
        raise NotFoundError(f"no class {str(name)[:40]!r} in the scheme: use one of {', '.join(scheme.names)}")
    return found
