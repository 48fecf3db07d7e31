"""What every table module needs of a connection: write transactions, timestamps, the database's own id,
its file and its media folder. Below store.db (which opens databases and rolls back interrupted ingests
through store.jobs), so table modules import these without a cycle."""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
from pathlib import Path

from sqlite_utils import Database

MEDIA_SUFFIX = "-media"


@contextlib.contextmanager
def immediate(db: Database):
    """A write transaction that takes the write lock at BEGIN, so read-then-write cannot race another writer."""
    db.conn.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.conn.rollback()
        raise
    else:
        db.conn.commit()


def db_file(db: Database) -> Path | None:
    """The database's file, or None for an in-memory database."""
    row = db.execute("PRAGMA database_list").fetchone()
    return Path(row[2]) if row and row[2] else None


def data_dir(db: Database) -> Path:
    """The folder of this database's page images, sources and model files: `<db file>-media` beside it,
    so two databases in one folder never touch each other's files."""
    filename = db_file(db)
    if filename is None:
        # In-memory databases keep their files in a per-process temp folder.
        import tempfile

        base = Path(tempfile.gettempdir()) / f"scriptlabel-mem-{os.getpid()}-{id(db.conn):x}"
    else:
        base = filename.parent / f"{filename.name}{MEDIA_SUFFIX}"
    base.mkdir(parents=True, exist_ok=True)
    return base


def row_counts(db: Database, tables: tuple[str, ...]) -> tuple[int, ...]:
    """How many rows each table holds (a cheap change counter for append-mostly tables)."""
    return tuple(db[table].count for table in tables)


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds")


def database_uid(db: Database) -> str:
    """This database's own random id (made once): a browser tab never sends one database's events to another."""
    row = db.execute("SELECT value FROM meta WHERE key = 'database_uid'").fetchone()
    return row[0]
