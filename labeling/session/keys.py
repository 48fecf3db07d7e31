"""The labeling keyboard: one key per class of the project's scheme, the same on the Label page's view and
the Script page. The keys of the view's own actions are reserved: a class may not take them."""

from __future__ import annotations

from sqlite_utils import Database

from store.scheme import BUILTIN_KEYS, load_scheme

# The full scheme's keys (the seven built-in labels); a project's scheme may change them (store/scheme.py).
LABEL_KEYS: dict[str, str] = {key: label for label, key in BUILTIN_KEYS.items()}

# The Label page's actions (view.js): skip, undo, edit, flag, jump, all identical, help. Enter, Backspace and
# Escape are not single characters, so no class can take them anyway.
RESERVED_KEYS: frozenset[str] = frozenset({"s", "u", "e", "f", "j", "g", "?"})


def key_map(db: Database) -> dict[str, str]:
    """key → class name of the project's scheme, in the scheme's order."""
    return load_scheme(db).keys


def titles(db: Database) -> dict[str, str]:
    """Every name a label can carry (classes and built-in labels) → what the page calls it."""
    scheme = load_scheme(db)
    out = {label: label.replace("_", " ") for label in BUILTIN_KEYS}
    for label in BUILTIN_KEYS:
        owner = scheme.get(scheme.class_of(label) or "")
        if owner is not None and owner.name != label:
            out[label] = f"{owner.display} ({label.replace('_', ' ')})"
    out.update(scheme.titles)
    return out
