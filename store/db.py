"""Opening a scriptlabel database: WAL, foreign keys, a busy timeout, the schema stamp checked,
migrations applied, an integrity check after an unclean shutdown, interrupted ingests rolled back."""

from __future__ import annotations

import errno
import os
import sqlite3
import threading
from pathlib import Path

from sqlite_utils import Database

from store.connection import (  # noqa: F401 (re-exported: callers above store/ import them from here)
    MEDIA_SUFFIX, data_dir, database_uid, db_file, immediate, now, row_counts)
from store.schema import migrations
from store.types import ScriptlabelError

DEFAULT_DB = Path("scriptlabel-data") / "scriptlabel.db"
BUSY_TIMEOUT_MS = 30_000
_CHECKED: set[str] = set()  # databases this process already checked (the app opens one per session)


class DatabaseError(ScriptlabelError):
    pass


class DamagedDatabaseError(DatabaseError):
    pass


class NewerDatabaseError(DatabaseError):
    pass


def explain_storage_error(exc: BaseException, path: str | Path) -> str:
    """One line a person can act on for an SQLite or file-system error while using the database at `path`."""
    text = str(exc).lower()
    code = getattr(exc, "errno", None)
    if ("unable to open" in text or "disk i/o" in text) and _read_only_place(path):
        text = "readonly"  # SQLite cannot make its -shm/-wal files there: the mount is read-only
    if "full" in text or code == errno.ENOSPC or code == errno.EDQUOT:
        return f"{path}: the disk is full; nothing was changed — free some space and try again"
    if "readonly" in text or "read-only" in text or code in (errno.EROFS, errno.EACCES, errno.EPERM):
        return (f"{path}: the database or its folder cannot be written (read-only disk or no permission); "
                "nothing was changed — fix the permissions or copy the database to a writable folder")
    if "malformed" in text or "corrupt" in text:
        return (f"{path}: the database is damaged (corrupt pages); nothing was changed — restore it from a backup "
                f"or rescue what is readable with `sqlite3 {path} .recover`")
    if "not a database" in text or "file is encrypted" in text:
        return f"{path} is not a scriptlabel database; choose another database file"
    if "disk i/o" in text or code == errno.EIO:
        return f"{path}: the disk reported an input/output error; nothing was changed — check the disk and try again"
    if "unable to open" in text:
        return f"{path}: the database file cannot be opened (missing folder or no permission); check the path"
    if "locked" in text or "busy" in text:
        return f"{path}: the database stayed busy (another program holds a write lock); try again in a moment"
    return f"{path}: the database could not be used ({exc}); nothing was changed"


def _read_only_place(path: str | Path) -> bool:
    folder = Path(path).parent
    try:
        return bool(os.statvfs(folder).f_flag & os.ST_RDONLY) or not os.access(folder, os.W_OK)
    except OSError:
        return False


def open_db(path: str | Path, *, create: bool = True, check: bool | None = None,
            recover: bool = True) -> Database:
    """Open (and create/migrate) the database at `path`; ":memory:" gives a private one.

    `create=False` never creates a file or folder (listing commands with a mistyped --db).
    `check`: run `PRAGMA quick_check` first — True always, None only after an unclean shutdown (a
    write-ahead log left behind), False never. `recover` rolls back ingests whose process is gone.
    """
    unclean = existed = False
    if str(path) == ":memory:":
        conn = sqlite3.connect(":memory:", check_same_thread=False)
    else:
        path = Path(path)
        if path.is_dir():
            raise DatabaseError(f"{path} is a directory; give the path of a .db file (e.g. {path / 'scriptlabel.db'})")
        if not path.exists():
            if not create:
                raise DatabaseError(f"no database at {path}; check the path, or ingest a script first to create one")
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise DatabaseError(explain_storage_error(exc, path)) from exc
        else:
            existed = True
            wal = Path(f"{path}-wal")
            unclean = wal.exists() and wal.stat().st_size > 0
        try:
            conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False)
            if existed:
                _refuse_foreign(conn, path, create=create)  # before anything (even the WAL switch) writes to it
            conn.execute("PRAGMA journal_mode=WAL")
        except sqlite3.DatabaseError as exc:
            raise _storage_error(exc, path) from exc
    try:
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA synchronous=FULL")
        db = Database(conn, execute_plugins=False)
        check_schema_stamp(db, path)
        if check or (check is None and unclean and str(path) not in _CHECKED):
            check_integrity(db, path)
            _CHECKED.add(str(path))
        migrations.apply(db)
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise _storage_error(exc, path) from exc
    except BaseException:
        conn.close()
        raise
    if recover:
        from store.jobs import roll_back_interrupted

        try:
            roll_back_interrupted(db)
        except sqlite3.OperationalError:
            pass  # a read-only copy: nothing can be rolled back, and fragments stay hidden anyway
    return db


def _refuse_foreign(conn: sqlite3.Connection, path: Path, *, create: bool) -> None:
    """An existing file that is not a scriptlabel database is never written into: another program's SQLite
    file always refused, an empty file unless the command may create a database (`create`)."""
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if not tables:
        if create:
            return
        conn.close()
        raise DatabaseError(f"{path} is not a scriptlabel database (an empty file); nothing was written — give the "
                            "path of a scriptlabel database, or ingest a script to create one")
    if "_sqlite_migrations" not in tables or conn.execute(
            "SELECT 1 FROM _sqlite_migrations WHERE migration_set = ? LIMIT 1", [migrations.name]).fetchone() is None:
        conn.close()
        raise DatabaseError(f"{path} is not a scriptlabel database (a SQLite file of another program, tables "
                            f"{', '.join(sorted(tables)[:5])}); nothing was changed — choose another --db path")


def _storage_error(exc: sqlite3.DatabaseError, path) -> DatabaseError:
    damaged = "malformed" in str(exc).lower() or "corrupt" in str(exc).lower()
    return (DamagedDatabaseError if damaged else DatabaseError)(explain_storage_error(exc, path))


def known_migrations() -> list[str]:
    return [m.name for m in migrations._migrations]  # sqlite-utils keeps the registered set here


def check_schema_stamp(db: Database, path) -> None:
    """Refuse a database migrated by a newer scriptlabel (it has migrations this version does not know)."""
    applied = [m.name for m in migrations.applied(db)]
    unknown = [name for name in applied if name not in set(known_migrations())]
    if unknown:
        raise NewerDatabaseError(
            f"{path} was written by a newer version of scriptlabel (schema {unknown[-1]}); nothing was changed — "
            "upgrade scriptlabel to open it")


def check_integrity(db: Database, path) -> None:
    """`PRAGMA quick_check`: refuse to write into a database with corrupt pages."""
    try:
        rows = db.execute("PRAGMA quick_check").fetchall()
    except sqlite3.DatabaseError as exc:
        raise DamagedDatabaseError(explain_storage_error(exc, path)) from exc
    if rows != [("ok",)]:
        raise DamagedDatabaseError(explain_storage_error(sqlite3.DatabaseError("malformed"), path))


class ThreadConnections(threading.local):
    """One connection per thread to the database at `path`, opened on first use.

    A sqlite connection must not be shared by overlapping requests or reruns: the app's routes run in a
    thread pool and Streamlit reruns on script threads, so each thread gets its own.
    """

    def __init__(self, path: str | Path):
        self.path = str(path)
        self.db: Database | None = None

    def get(self) -> Database:
        if self.db is None:
            self.db = open_db(self.path)
        return self.db
