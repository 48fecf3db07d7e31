"""A project's classes as the line adapter predicts them (`ClassScheme`).

The base model always predicts the 7 built-in labels (`store.types.LABELS`). A project may merge some
of them (the seed study's S/C/D/O) and add classes only people's labels define (`shot`, `act_break`):

    ClassScheme(classes=("S", "C", "D", "O", "shot"),
                class_map={"scene_heading": "S", "action": "S", "transition": "S", "character": "C",
                           "dialogue": "D", "parenthetical": "D", "other": "O"})

`class_map` says which class each built-in label counts as (a built-in label not in it keeps its
own name, which must then be one of `classes`). A class no built-in label maps to is *new*: the
adapter starts it from a low prior (`NEW_CLASS_PRIOR`) and learns it from labels alone. The base's 7
probabilities stay the adapter's features whatever the scheme, so a new class can still be told by
what the base thought of its lines (shot lines: uppercase "action").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from models.lines.labels import TrainingDataError
from store.types import LABELS, ScriptlabelError

# The starting probability of a class no built-in label maps to, before any tree: low enough that an
# untrained new class never wins a line, high enough that a handful of labels can lift it.
NEW_CLASS_PRIOR = 1e-3


class SchemeError(ScriptlabelError, ValueError):
    """A class scheme that cannot be used (unknown class, a built-in label mapped nowhere...)."""


@dataclass(frozen=True)
class ClassScheme:
    """The adapter's output classes and how the 7 built-in labels fold into them (module docstring)."""

    classes: tuple[str, ...] = LABELS
    class_map: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        classes = tuple(str(c) for c in self.classes)
        object.__setattr__(self, "classes", classes)
        object.__setattr__(self, "class_map", {str(k): str(v) for k, v in dict(self.class_map).items()})
        if len(classes) < 2:
            raise SchemeError(f"a label scheme needs at least two classes, got {list(classes)}")
        if len(set(classes)) != len(classes):
            raise SchemeError(f"a label scheme names a class twice: {list(classes)}")
        for label, target in self.class_map.items():
            if label not in LABELS:
                raise SchemeError(f"class_map: {label!r} is not a built-in label ({', '.join(LABELS)})")
            if target not in classes:
                raise SchemeError(f"class_map: {label!r} maps to {target!r}, which is not one of {list(classes)}")
        for label in LABELS:
            if self.target(label) not in classes:
                raise SchemeError(f"built-in label {label!r} maps to no class of {list(classes)}: "
                                  f"add it to class_map (e.g. {label!r}: {classes[0]!r}) or to classes")

    # -- what the scheme says --

    @classmethod
    def builtin(cls) -> "ClassScheme":
        return cls()

    @property
    def is_builtin(self) -> bool:
        return self.classes == LABELS and all(self.target(label) == label for label in LABELS)

    def target(self, label: str) -> str:
        """The class a built-in label counts as."""
        return self.class_map.get(label, label)

    def members(self, name: str) -> tuple[str, ...]:
        """The built-in labels a class stands for (empty for a new class)."""
        return tuple(label for label in LABELS if self.target(label) == name)

    @property
    def new_classes(self) -> tuple[str, ...]:
        return tuple(c for c in self.classes if not self.members(c))

    def membership(self) -> np.ndarray:
        """(7, n_classes) 0/1 matrix: built-in label i counts as class j."""
        out = np.zeros((len(LABELS), len(self.classes)), dtype=np.float64)
        for i, label in enumerate(LABELS):
            out[i, self.classes.index(self.target(label))] = 1.0
        return out

    # -- from the base's probabilities --

    def base_proba(self, proba: np.ndarray) -> np.ndarray:
        """The base's 7 probabilities as this scheme's: summed over each class's members; a new class
        gets `NEW_CLASS_PRIOR` (the rest scaled down to make room), so rows still sum to 1."""
        proba = np.asarray(proba, dtype=np.float64)
        if self.is_builtin:
            return proba.astype(np.float32)
        out = proba @ self.membership()
        new = np.array([not self.members(c) for c in self.classes])
        if new.any():
            out *= 1.0 - NEW_CLASS_PRIOR * new.sum()
            out[:, new] = NEW_CLASS_PRIOR
        return out.astype(np.float32)

    # -- labels --

    def encode(self, y: Any, n: int) -> np.ndarray:
        """Labels (a class of this scheme, or a built-in label it maps) → class codes; -1 = unlabeled."""
        if y is None:
            raise TrainingDataError("fit needs labels: pass y with one label (or None) per line")
        values = list(y)
        if len(values) != n:
            raise TrainingDataError(f"{n} lines but {len(values)} labels: pass one label (or None) per line")
        index = {name.lower(): i for i, name in enumerate(self.classes)}
        for label in LABELS:
            index.setdefault(label, self.classes.index(self.target(label)))
        codes = np.full(n, -1, dtype=np.int64)
        for i, value in enumerate(values):
            if value is None or (isinstance(value, float) and np.isnan(value)):
                continue
            if isinstance(value, (int, np.integer)):
                if value < 0:
                    continue
                if value >= len(self.classes):
                    raise TrainingDataError(f"class index {value} is outside 0..{len(self.classes) - 1}")
                codes[i] = int(value)
                continue
            name = str(value).strip().lower()
            if name not in index:
                raise TrainingDataError(f"unknown label {value!r} on line {i}: use one of {', '.join(self.classes)}")
            codes[i] = index[name]
        return codes

    # -- saved form --

    def to_dict(self) -> dict:
        return {"classes": list(self.classes), "class_map": dict(self.class_map)}

    @classmethod
    def from_dict(cls, data: Mapping | None) -> "ClassScheme":
        """The saved form; None or {} (an adapter saved before schemes) is the 7 built-in labels."""
        if not data:
            return cls()
        return cls(classes=tuple(data.get("classes", LABELS)), class_map=dict(data.get("class_map", {})))

    @classmethod
    def of(cls, classes: Sequence[str] | None = None, class_map: Mapping[str, str] | None = None) -> "ClassScheme":
        """A scheme from a caller's lists (None, None: the built-in labels)."""
        return cls(classes=tuple(classes) if classes is not None else LABELS, class_map=dict(class_map or {}))


BUILTIN_SCHEME = ClassScheme()
