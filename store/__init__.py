"""The store: every SQL statement, through sqlite-utils.

sqlite-utils imports pandas and numpy when it is first imported, only to map their scalar types to column
types; that alone costs the command line ~0.6 s before any command runs. So the package imports it here
with both hidden (unless something already imported them) and maps their types on first use instead: a
light command (`scriptlabel label …`) never loads them, and a process that does gets the same mapping.
"""

from __future__ import annotations

import sys

_HEAVY = ("numpy", "pandas")


class _LazyColumnTypes(dict):
    """sqlite-utils' COLUMN_TYPE_MAPPING, completed with numpy/pandas scalar types once they are loaded."""

    def __missing__(self, key):
        numpy, pandas = sys.modules.get("numpy"), sys.modules.get("pandas")
        if numpy is not None:
            self.update({getattr(numpy, f"{kind}{bits}"): "INTEGER"
                         for kind in ("int", "uint") for bits in (8, 16, 32, 64)})
            self.update({getattr(numpy, f"float{bits}"): "REAL" for bits in (16, 32, 64)})
        if pandas is not None:
            self[pandas.Timestamp] = "TEXT"
        if dict.__contains__(self, key):
            return dict.__getitem__(self, key)
        raise KeyError(key)

    def get(self, key, default=None):
        try:
            return self[key]
        except KeyError:
            return default


def _import_sqlite_utils() -> None:
    if "sqlite_utils" in sys.modules:
        return
    hidden = [name for name in _HEAVY if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # `import numpy` raises ImportError: sqlite-utils goes on without it
    try:
        import sqlite_utils.db as sqlite_db
    finally:
        for name in hidden:
            if sys.modules.get(name, False) is None:
                del sys.modules[name]
    if hidden:
        sqlite_db.COLUMN_TYPE_MAPPING = _LazyColumnTypes(sqlite_db.COLUMN_TYPE_MAPPING)


_import_sqlite_utils()
