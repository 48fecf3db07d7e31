"""Opening a scriptlabel database: WAL, foreign keys, a busy timeout, migrations applied."""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
import sqlite3
from pathlib import Path

from sqlite_utils import Database

from store.schema import migrations
from store.types import ScriptlabelError

DEFAULT_DB = Path("scriptlabel-data") / "scriptlabel.db"
BUSY_TIMEOUT_MS = 30_000


class DatabaseError(ScriptlabelError):
    pass


def default_db_path() -> Path:
    """`$SCRIPTLABEL_DB`, else ./scriptlabel-data/scriptlabel.db (DESIGN.md)."""
    return Path(os.environ.get("SCRIPTLABEL_DB") or DEFAULT_DB)


def open_db(path: str | Path | None = None, *, create: bool = True) -> Database:
    """Open (and create/migrate) the database at `path`; ":memory:" gives a private one."""
    if path is None:
        path = default_db_path()
    if str(path) == ":memory:":
        conn = sqlite3.connect(":memory:", check_same_thread=False)
    else:
        path = Path(path)
        if path.is_dir():
            raise DatabaseError(f"{path} is a directory; give the path of a .db file (e.g. {path / 'scriptlabel.db'})")
        if not path.exists():
            if not create:
                raise DatabaseError(f"no database at {path}; ingest a script first (scriptlabel --db {path} ingest FILE)")
            path.parent.mkdir(parents=True, exist_ok=True)
        try:
            conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
        except sqlite3.DatabaseError as exc:
            raise DatabaseError(f"{path} is not a scriptlabel database ({exc}); choose another --db path") from exc
    conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA synchronous=FULL")
    db = Database(conn, execute_plugins=False)
    migrations.apply(db)
    return db


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


def data_dir(db: Database) -> Path:
    """The folder beside the database where page images, sources and model files live."""
    row = db.execute("PRAGMA database_list").fetchone()
    filename = row[2] if row else ""
    if not filename:
        # In-memory databases keep their files in a per-process temp folder.
        import tempfile

        base = Path(tempfile.gettempdir()) / f"scriptlabel-mem-{os.getpid()}"
    else:
        base = Path(filename).parent
    base.mkdir(parents=True, exist_ok=True)
    return base


def db_file(db: Database) -> Path | None:
    """The file behind a connection (None for an in-memory database)."""
    row = db.execute("PRAGMA database_list").fetchone()
    return Path(row[2]) if row and row[2] else None


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds")


def database_uid(db: Database) -> str:
    """This database's own random id (made once): a browser tab never sends one database's events to another."""
    row = db.execute("SELECT value FROM meta WHERE key = 'database_uid'").fetchone()
    return row[0]
