"""Changing a project's label scheme (store/scheme.py): add, edit and remove classes, merge built-in labels
into a class and back, switch to a preset. Lead or admin only; each change is one transaction with its
audit record. The CLI's `scheme` group and the Models page's scheme editor call these.

No change loses a label: labels stay stored as pressed and read through the scheme, so merging `action`
into `S` makes its labels read as `S`, and un-merging it makes them read as `action` again. A class that
carries labels (or a rule) cannot be removed; `use` keeps such classes.
"""

from __future__ import annotations

from dataclasses import replace

from sqlite_utils import Database

from labeling.accounts.access import Identity, require
from labeling.session.keys import RESERVED_KEYS
from store import scheme as scheme_store
from store.scheme import BUILTIN_DISPLAY, BUILTIN_KEYS, PRESETS, Scheme, SchemeClass, SchemeError
from store.types import LABELS


def _free_key(scheme: Scheme, wanted: str | None, *, exclude: str | None = None) -> str:
    taken = {c.key for c in scheme.classes if c.name != exclude} | RESERVED_KEYS
    if wanted and wanted not in taken:
        return wanted
    for key in "abcdhiklmnopqrtvwxyz0123456789":
        if key not in taken:
            return key
    raise SchemeError("every key is taken: remove a class first")


def _builtins(labels) -> list[str]:
    out = []
    for label in labels:
        name = str(label).strip().lower()
        if name not in LABELS:
            raise SchemeError(f"{str(label)[:40]!r} is not a built-in label: merge one of {', '.join(LABELS)}")
        out.append(name)
    if not out:
        raise SchemeError("name at least one built-in label to merge")
    return out


def _in_use(scheme: Scheme, name: str, counts: dict[str, int], rules: set[str]) -> str | None:
    n = counts.get(name.lower(), 0)
    if n:
        return f"{n} label{'s' if n != 1 else ''}"
    if name.lower() in rules:
        return "a rule"
    return None


def _rule_classes(db: Database) -> set[str]:
    from store.label_rules import active_rule_classes

    return active_rule_classes(db)


def _change(db: Database, identity: Identity, action: str, change, detail: dict) -> Scheme:
    require(identity, "scheme")
    return scheme_store.change_scheme(db, change, actor=identity.name, action=action,
                                      reserved=RESERVED_KEYS, detail=detail)


def add_class(db: Database, identity: Identity, name: str, *, key: str, display: str | None = None) -> Scheme:
    """A new class of the project's own (`shot`, `super`, `act_break`, `lyrics`): people's labels teach it."""
    name = (name or "").strip()

    def change(scheme: Scheme, _counts) -> Scheme:
        if scheme.get(name) is not None:
            raise SchemeError(f"there is already a class {scheme.get(name).name!r}: edit it with `scheme set`")
        if name.lower() in LABELS:
            raise SchemeError(f"{name!r} is a built-in label: un-merge it with `scheme unmerge {name.lower()}`")
        new = SchemeClass(name, (key or "").strip().lower(), (display or name.replace("_", " ")).strip(), ())
        return Scheme(scheme.classes + (new,))

    return _change(db, identity, "scheme.add", change, {"name": name, "key": key})


def set_class(db: Database, identity: Identity, name: str, *, key: str | None = None,
              display: str | None = None) -> Scheme:
    """Give a class another key or display name (its labels are untouched)."""
    def change(scheme: Scheme, _counts) -> Scheme:
        found = scheme_store.class_or_error(scheme, name)
        new = replace(found, key=(key or found.key).strip().lower(), display=(display or found.display).strip())
        return Scheme(tuple(new if c.name == found.name else c for c in scheme.classes))

    return _change(db, identity, "scheme.set", change, {"name": name, "key": key, "display": display})


def remove_class(db: Database, identity: Identity, name: str) -> Scheme:
    """Remove a class of the project's own that nothing refers to (no label, no rule)."""
    rules = _rule_classes(db)

    def change(scheme: Scheme, counts) -> Scheme:
        found = scheme_store.class_or_error(scheme, name)
        if found.members:
            covered = ", ".join(found.members)
            raise SchemeError(f"{found.name} covers built-in labels ({covered}): merge them elsewhere or "
                              f"un-merge them (`scheme unmerge {' '.join(m for m in found.members if m != found.name)}`)"
                              if found.name not in LABELS else
                              f"{found.name} is a built-in label: merge it into another class instead")
        used = _in_use(scheme, found.name, counts, rules)
        if used:
            raise SchemeError(f"class {found.name} carries {used}: it stays so no label is lost "
                              "(give it another key or display name instead)")
        return Scheme(tuple(c for c in scheme.classes if c.name != found.name))

    return _change(db, identity, "scheme.remove", change, {"name": name})


def merge(db: Database, identity: Identity, labels, *, into: str, key: str | None = None,
          display: str | None = None) -> Scheme:
    """Merge built-in labels into a class (made with `key` when it does not exist yet): their labels, the
    model's suggestions and the rules for them read as that class from now on."""
    builtins = _builtins(labels)
    target_name = (into or "").strip()

    def change(scheme: Scheme, _counts) -> Scheme:
        target = scheme.get(target_name)
        classes = list(scheme.classes)
        if target is None:
            if not key:
                raise SchemeError(f"there is no class {target_name!r} yet: give its key with --key to make it")
            if target_name.lower() in LABELS:
                raise SchemeError(f"{target_name!r} is a built-in label: un-merge it first to make it a class")
            target = SchemeClass(target_name, key.strip().lower(), (display or target_name).strip(), ())
            classes.append(target)
        if target.name in builtins:
            raise SchemeError(f"{target.name} cannot be merged into itself")
        moving: list[str] = []
        kept = []
        for c in classes:
            gone = [m for m in c.members if m in builtins]
            if c.name in builtins:  # a built-in class merged away: its merged labels come along
                moving += list(c.members)
                continue
            if gone and c.name != target.name:
                moving += gone
                c = replace(c, members=tuple(m for m in c.members if m not in builtins))
            kept.append(c)
        out = []
        for c in kept:
            if c.name == target.name:
                members = tuple(dict.fromkeys(c.members + tuple(moving) + tuple(builtins)))
                c = replace(c, members=tuple(sorted(members, key=lambda m: (m != c.name, LABELS.index(m)))))
            out.append(c)
        return Scheme(tuple(out))

    return _change(db, identity, "scheme.merge", change, {"labels": builtins, "into": target_name})


def unmerge(db: Database, identity: Identity, labels, *, key: str | None = None) -> Scheme:
    """Make built-in labels their own classes again (their default key, or `key` for one label): every
    label given to them reads as itself again."""
    builtins = _builtins(labels)
    if key and len(builtins) > 1:
        raise SchemeError("--key names the key of one class: un-merge one label at a time to choose keys")

    def change(scheme: Scheme, _counts) -> Scheme:
        classes = list(scheme.classes)
        for label in builtins:
            owner = scheme.get(scheme.class_of(label) or "")
            if owner is None or owner.name == label:
                raise SchemeError(f"{label} is its own class already: nothing to un-merge")
        classes = [replace(c, members=tuple(m for m in c.members if m not in builtins)) for c in classes]
        current = Scheme(tuple(classes))
        for label in builtins:
            wanted = (key or BUILTIN_KEYS[label]).strip().lower()
            taken = next((c.name for c in current.classes if c.key == wanted), None)
            if taken is not None:
                raise SchemeError(f"key {wanted!r} of {label} is taken by {taken}: give another with --key")
            position = LABELS.index(label)
            new = SchemeClass(label, wanted, BUILTIN_DISPLAY[label], (label,))
            classes = list(current.classes)
            classes.insert(min(position, len(classes)), new)
            current = Scheme(tuple(classes))
        return current

    return _change(db, identity, "scheme.unmerge", change, {"labels": builtins, "key": key})


def use_preset(db: Database, identity: Identity, preset: str) -> Scheme:
    """Switch the built-in part of the scheme to a preset (`full`: the seven labels; `seed`: S/C/D/O).
    The project's own classes stay; a class left out of the preset that carries labels or a rule stays
    too (as a class of its own), with another key if the preset's took its key."""
    target = scheme_store.preset_scheme(preset)
    rules = _rule_classes(db)

    def change(scheme: Scheme, counts) -> Scheme:
        out = list(target.classes)
        names = {c.name.lower() for c in out}
        for c in scheme.classes:
            if c.name.lower() in names or c.name in LABELS:  # the preset covers every built-in label
                continue
            if c.learned_only or _in_use(scheme, c.name, counts, rules):
                current = Scheme(tuple(out))
                out.append(replace(c, members=(), key=_free_key(current, c.key)))
        return Scheme(tuple(out))

    return _change(db, identity, "scheme.use", change, {"preset": preset})


def presets() -> tuple[str, ...]:
    return tuple(PRESETS)
