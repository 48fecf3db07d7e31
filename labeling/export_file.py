"""Where an export may be written, and writing it whole or not at all.

An export goes only to a new file or to an existing regular file that is neither a SQLite database nor one
of the project's own files (the database, its -wal/-shm/-journal, the `<db>-media/` folder); an existing
file is replaced only when the caller says so (`force`); a device, a pipe, a socket or a symbolic link is
never followed or replaced (`export --out scriptlabel.db`, a typo away, once turned every label into CSV).
The file is written beside the destination under a unique temporary name and renamed over it at the end.
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path

from store.connection import MEDIA_SUFFIX, db_file
from store.types import ScriptlabelError

SQLITE_HEADER = b"SQLite format 3\x00"
DB_SIDECARS = ("", "-wal", "-shm", "-journal")


class ExportError(ScriptlabelError):
    pass


def _project_files(database: Path | None) -> tuple[list[Path], Path | None]:
    """(the database and its sidecar files, its media folder), as real paths."""
    if database is None:
        return [], None
    real = Path(os.path.realpath(database))
    return [Path(f"{real}{suffix}") for suffix in DB_SIDECARS], Path(f"{real}{MEDIA_SUFFIX}")


def check_destination(out: str | Path, *, db=None, force: bool = False) -> Path:
    """`out` when an export may be written there; else ExportError saying why and what to do.

    `db` (a sqlite-utils Database) names the project whose files are never replaced.
    """
    out = Path(out)
    if not out.parent.is_dir():
        raise ExportError(f"{out.parent}: no such directory; create it first (mkdir -p {out.parent})")
    try:
        found = os.lstat(out)
    except FileNotFoundError:
        found = None
    if found is not None and stat.S_ISLNK(found.st_mode):
        raise ExportError(f"{out} is a symbolic link (to {os.readlink(out)}); an export never follows one — "
                          "give the path of the file itself")
    if found is not None and stat.S_ISDIR(found.st_mode):
        raise ExportError(f"{out} is a directory; give a file path, e.g. {out / 'export.csv'}")
    if found is not None and not stat.S_ISREG(found.st_mode):
        raise ExportError(f"{out} is not a regular file (a device, a pipe or a socket); an export never writes "
                          "into one — give a file path")
    sidecars, media = _project_files(db_file(db) if db is not None else None)
    real = Path(os.path.realpath(out))
    if real in sidecars or _same_file(found, sidecars[:1]):
        raise ExportError(f"{out} is this project's database (or its journal); an export never replaces it — "
                          "give another file path, e.g. labels.csv")
    if media is not None and (real == media or media in real.parents):
        raise ExportError(f"{out} is inside the project's own media folder ({media}); give a path outside it")
    if found is not None:
        if _starts_like_sqlite(out):
            raise ExportError(f"{out} is a SQLite database; an export never replaces a database — "
                              "give another file path")
        if not force:
            raise ExportError(f"{out} exists; add --force to replace it, or give a new file path")
    return out


def _same_file(found: os.stat_result | None, paths: list[Path]) -> bool:
    """A hard link to the database is the database."""
    if found is None:
        return False
    for path in paths:
        try:
            other = os.stat(path)
        except OSError:
            continue
        if (other.st_dev, other.st_ino) == (found.st_dev, found.st_ino):
            return True
    return False


def _starts_like_sqlite(path: Path) -> bool:
    try:
        with open(path, "rb") as handle:
            return handle.read(len(SQLITE_HEADER)) == SQLITE_HEADER
    except OSError:
        return False


def write_atomically(out: str | Path, write: Callable[[Path], None], *, db=None, force: bool = False) -> Path:
    """Check `out`, let `write` fill a temporary file beside it, then rename it over `out`.

    Nothing is left behind when `write` fails; OSError (read-only folder, full disk) becomes ExportError.
    """
    out = check_destination(out, db=db, force=force)
    tmp = None
    try:
        fd, name = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".partial")
        os.close(fd)
        tmp = Path(name)
        write(tmp)
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        try:
            mode = stat.S_IMODE(os.stat(out).st_mode)
        except FileNotFoundError:
            mode = 0o666 & ~_umask()
        os.chmod(tmp, mode)
        check_destination(out, db=db, force=force)  # again: the path may have changed while writing
        os.replace(tmp, out)
    except OSError as exc:  # read-only folder or mount, no permission, a full disk
        raise ExportError(f"{out}: cannot write the export ({_reason(exc)}); nothing was written — choose a "
                          "writable folder with free space") from exc
    finally:
        try:
            if tmp is not None:
                tmp.unlink(missing_ok=True)
        except OSError:
            pass
    return out


def _umask() -> int:
    """The process's umask without changing it (os.umask would, for every thread at once)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return 0o022


def _reason(exc: OSError) -> str:
    reasons = {errno.ENOSPC: "the disk is full", errno.EROFS: "a read-only disk", errno.EACCES: "no permission",
               errno.EPERM: "no permission", errno.EDQUOT: "over the disk quota"}
    if exc.errno in reasons:
        return reasons[exc.errno]
    return "the disk is full" if "No space" in str(exc) else (exc.strerror or str(exc) or type(exc).__name__)
