"""Local accounts, sign-in sessions, wrong-password throttling, restricted scripts and the audit log.

Passwords are hashed with scrypt (memory-hard, in the standard library) and a per-user salt; a session
token is random and only its SHA-256 is stored; wrong passwords are counted per name in SQLite, so the
slow-down holds across processes and restarts.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import time
from dataclasses import dataclass

from sqlite_utils import Database

from store.db import immediate, now
from store.types import NotFoundError, ScriptlabelError

ROLES = ("annotator", "lead", "admin")  # each role can do everything the ones before it can
SESSION_TTL_S = 12 * 3600
# scrypt cost: 2**14 × 8 × 128 B = 16 MiB per hash, ~50 ms here; stored with each hash so it can grow.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
FREE_FAILURES = 3  # wrong passwords per name before the next tries wait
FREE_CLIENT_FAILURES = 10  # wrong passwords from one address (any names) before its next tries wait
CLIENT_FORGET_S = 3600  # an address's count starts over after an hour without a wrong password
MAX_LOCK_S = 15 * 60
_NAME = re.compile(r"^[^\s\x00-\x1f<>\"'`]{1,80}$")


class AccountError(ScriptlabelError):
    """A user-facing problem with an account: unknown name, bad role, empty password."""


class SignInError(ScriptlabelError):
    """A sign-in was refused: wrong name or password, or too many wrong tries (`retry_after_s`)."""

    def __init__(self, message: str, *, retry_after_s: float = 0.0):
        super().__init__(message)
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class User:
    name: str
    role: str
    has_password: bool
    created_at: str = ""


def normalize_name(name: str) -> str:
    """Names are kept as typed, except emails (OIDC identities), which compare in lower case."""
    name = (name or "").strip()
    return name.lower() if "@" in name else name


def check_name(name: str) -> str:
    name = normalize_name(name)
    if not _NAME.match(name):
        raise AccountError(f"invalid user name {name!r}: 1-80 characters, no spaces, quotes or angle brackets")
    return name


def check_role(role: str) -> str:
    if role not in ROLES:
        raise AccountError(f"unknown role {role!r}: use one of {', '.join(ROLES)}")
    return role


# --- passwords -------------------------------------------------------------------------------

def hash_password(password: str, *, n: int = SCRYPT_N, r: int = SCRYPT_R, p: int = SCRYPT_P) -> str:
    if not password:
        raise AccountError("the password is empty: give one on standard input")
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=64 * 1024 * 1024, dklen=32)
    return f"scrypt${n}${r}${p}${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str | None) -> bool:
    """True when `password` matches the stored hash; constant-time in the digest comparison."""
    if not stored:
        return False
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        got = hashlib.scrypt(password.encode("utf-8"), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p),
                             maxmem=64 * 1024 * 1024, dklen=len(digest) // 2)
    except (ValueError, MemoryError):
        return False
    return hmac.compare_digest(got.hex(), digest)


# Checked against when a name is unknown (or has no password), so a wrong name costs one scrypt of the same
# cost as a wrong password. Its digest (all zeros) is matched by no password.
_DUMMY_HASH = f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${'00' * 16}${'00' * 32}"


# --- accounts --------------------------------------------------------------------------------

def _user(row: dict) -> User:
    return User(name=row["name"], role=row["role"], has_password=bool(row["password_hash"]),
                created_at=row["created_at"])


def add_user(db: Database, name: str, *, role: str, password: str | None = None) -> User:
    """Add an account; without a password the person can sign in only through OIDC (name = their email)."""
    name, role = check_name(name), check_role(role)
    if password is None and "@" not in name:
        raise AccountError(f"{name}: a local account needs a password (--password-stdin); "
                           "only an OIDC email may be added without one")
    hashed = hash_password(password) if password is not None else None
    stamp = now()
    with immediate(db):
        if db.execute("SELECT 1 FROM users WHERE name = ?", [name]).fetchone():
            raise AccountError(f"user {name} exists already; change the password with `scriptlabel users passwd`")
        db.execute("INSERT INTO users(name, role, password_hash, created_at, updated_at) VALUES (?,?,?,?,?)",
                   [name, role, hashed, stamp, stamp])
    return get_user(db, name)


def get_user(db: Database, name: str) -> User:
    rows = list(db.query("SELECT * FROM users WHERE name = ?", [normalize_name(name)]))
    if not rows:
        raise NotFoundError(f"no user called {name!r}; list them with `scriptlabel users list`")
    return _user(rows[0])


def find_user(db: Database, name: str) -> User | None:
    try:
        return get_user(db, name)
    except NotFoundError:
        return None


def list_users(db: Database) -> list[User]:
    return [_user(r) for r in db.query("SELECT * FROM users ORDER BY name")]


def has_accounts(db: Database) -> bool:
    """Any account at all: then every page asks for sign-in first."""
    return db.execute("SELECT 1 FROM users LIMIT 1").fetchone() is not None


def has_local_accounts(db: Database) -> bool:
    """Any account with a password (sign-in with the app's own form)."""
    return db.execute("SELECT 1 FROM users WHERE password_hash IS NOT NULL LIMIT 1").fetchone() is not None


def set_password(db: Database, name: str, password: str) -> None:
    """A new password; every session of that person ends and the wrong-password count resets."""
    user = get_user(db, name)
    hashed = hash_password(password)
    with immediate(db):
        _write_password(db, user.name, hashed)


def _write_password(db: Database, name: str, hashed: str) -> None:
    db.execute("UPDATE users SET password_hash = ?, updated_at = ? WHERE name = ?", [hashed, now(), name])
    db.execute("DELETE FROM sessions WHERE name = ?", [name])
    db.execute("DELETE FROM sign_in_failures WHERE name = ?", [name])
    db.execute("DELETE FROM password_resets WHERE name = ? AND used_at IS NULL", [name])  # a new one voids links


# --- one-time password links (an admin's reset) ---------------------------------------------------

RESET_TTL_S = 24 * 3600.0


class ResetLinkError(ScriptlabelError):
    """A password link that cannot be used (unknown, used already, expired): ask an admin for a new one."""


def create_reset_link(db: Database, name: str, *, by: str, ttl_s: float = RESET_TTL_S, clock=time.time) -> str:
    """A one-time token to set a new password, valid `ttl_s`; only its hash is stored, an earlier unused link
    of that person stops working, and the person's open sessions end. Returns the token."""
    user = get_user(db, name)
    token = secrets.token_urlsafe(32)
    at = clock()
    with immediate(db):
        db.execute("DELETE FROM password_resets WHERE name = ? AND used_at IS NULL", [user.name])
        db.execute("INSERT INTO password_resets(token_sha256, name, created_by, created_at, expires_at) "
                   "VALUES (?,?,?,?,?)", [_token_hash(token), user.name, by or "anonymous", at, at + ttl_s])
        db.execute("DELETE FROM sessions WHERE name = ?", [user.name])
    return token


def reset_link_user(db: Database, token: str | None, *, clock=time.time) -> str | None:
    """The person a link is for, while it is unused and not expired; None otherwise."""
    if not token:
        return None
    row = db.execute("SELECT name FROM password_resets WHERE token_sha256 = ? AND used_at IS NULL AND expires_at > ?",
                     [_token_hash(token), clock()]).fetchone()
    return row[0] if row else None


def use_reset_link(db: Database, token: str, password: str, *, clock=time.time) -> str:
    """Set the person's password through a link, once (checked and written in one transaction, with its audit
    record); their sessions end. Returns the name. Raises ResetLinkError."""
    hashed = hash_password(password)  # slow on purpose: outside the write lock
    with immediate(db):
        row = db.execute("SELECT name, expires_at, used_at FROM password_resets WHERE token_sha256 = ?",
                         [_token_hash(token or "")]).fetchone()
        if row is None or row[2] is not None or row[1] <= clock():
            raise ResetLinkError("this password link was used already, has expired or was replaced by a newer one: "
                                 "ask an admin for a new link")
        db.execute("UPDATE password_resets SET used_at = ? WHERE token_sha256 = ?", [clock(), _token_hash(token)])
        _write_password(db, row[0], hashed)
        audit_in_transaction(db, row[0], "password_set", detail={"name": row[0], "via": "reset link"})
    return row[0]


def set_role(db: Database, name: str, role: str) -> None:
    user, role = get_user(db, name), check_role(role)
    with immediate(db):
        db.execute("UPDATE users SET role = ?, updated_at = ? WHERE name = ?", [role, now(), user.name])


def remove_user(db: Database, name: str) -> None:
    """Remove an account and end its sessions; labels it made keep its name."""
    user = get_user(db, name)
    with immediate(db):
        db.execute("DELETE FROM sessions WHERE name = ?", [user.name])
        db.execute("DELETE FROM script_access WHERE name = ?", [user.name])
        db.execute("DELETE FROM users WHERE name = ?", [user.name])


# --- sign-in and sessions ----------------------------------------------------------------------

def lock_seconds(failures: int, *, free: int = FREE_FAILURES) -> float:
    """How long the next try waits after `failures` wrong passwords in a row: 0, then 5 s doubling to 15 min."""
    if failures < free:
        return 0.0
    return float(min(MAX_LOCK_S, 5 * 2 ** min(failures - free, 16)))


# (table, key column) of the two counters: wrong passwords per name, and per client address.
_BY_NAME, _BY_CLIENT = ("sign_in_failures", "name"), ("sign_in_client_failures", "client")


def _throttle_row(db: Database, counter: tuple[str, str], key: str) -> tuple[int, float, float]:
    table, column = counter
    row = db.execute(f"SELECT failures, last_failure_at, locked_until FROM {table} WHERE {column} = ?",
                     [key]).fetchone()
    return (int(row[0]), float(row[1]), float(row[2])) if row else (0, 0.0, 0.0)


def _count_try(db: Database, counter: tuple[str, str], key: str, failures: int, at: float, free: int) -> None:
    table, column = counter
    db.execute(f"INSERT INTO {table}({column}, failures, last_failure_at, locked_until) VALUES (?,?,?,?) "
               f"ON CONFLICT({column}) DO UPDATE SET failures = excluded.failures, "
               "last_failure_at = excluded.last_failure_at, locked_until = excluded.locked_until",
               [key, failures, at, at + lock_seconds(failures, free=free)])


def _reserve_try(db: Database, name: str, client: str | None, at: float) -> None:
    """Check the lockout and count this try as a wrong password, in one write transaction, before any
    password is checked: parallel tries queue on the write lock and each sees the ones before it, so at
    most FREE_FAILURES passwords per name (FREE_CLIENT_FAILURES per address) are checked before the wait.
    A right password takes its count back afterwards (`_settle_try`)."""
    with immediate(db):
        name_failures, _, name_until = _throttle_row(db, _BY_NAME, name)
        client_failures, client_last, client_until = (
            _throttle_row(db, _BY_CLIENT, client) if client else (0, 0.0, 0.0))
        if client and client_last and at - client_last > CLIENT_FORGET_S and client_until <= at:
            client_failures = 0  # an office address is not held to wrong passwords of long ago
        wait = max(name_until, client_until) - at
        if wait > 0:
            raise SignInError(f"too many wrong passwords: try again in {int(wait) + 1} s", retry_after_s=wait)
        _count_try(db, _BY_NAME, name, name_failures + 1, at, FREE_FAILURES)
        if client:
            _count_try(db, _BY_CLIENT, client, client_failures + 1, at, FREE_CLIENT_FAILURES)


def _settle_try(db: Database, name: str, client: str | None) -> None:
    """The password was right: the name starts over, the address gets back the try it was charged."""
    with immediate(db):
        db.execute("DELETE FROM sign_in_failures WHERE name = ?", [name])
        if client:
            db.execute("UPDATE sign_in_client_failures SET failures = MAX(failures - 1, 0) WHERE client = ?", [client])


def authenticate(db: Database, name: str, password: str, *, client: str | None = None, clock=time.time) -> User:
    """The account for a correct name and password; raises SignInError (wrong, or wait `retry_after_s`).

    Wrong passwords are counted per name (known or not) and per client address (`client`); the count
    and the lockout check are one transaction. A wrong or unknown name costs one scrypt like a wrong
    password, so the answer's time does not tell which names exist.
    """
    name = normalize_name(name)
    key = name[:80]
    client = (client or "")[:64] or None
    _reserve_try(db, key, client, clock())
    user = find_user(db, name) if _NAME.match(name or "") else None
    stored = None
    if user is not None and user.has_password:
        stored = db.execute("SELECT password_hash FROM users WHERE name = ?", [user.name]).fetchone()[0]
    ok = verify_password(password or "", stored or _DUMMY_HASH) and stored is not None
    if not ok:
        raise SignInError("wrong name or password")
    _settle_try(db, key, client)
    return user


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_session(db: Database, name: str, *, ttl_s: float = SESSION_TTL_S, clock=time.time) -> str:
    """A new session for an existing account; returns the token (only its hash is stored)."""
    user = get_user(db, name)
    token = secrets.token_urlsafe(32)
    at = clock()
    with immediate(db):
        db.execute("DELETE FROM sessions WHERE expires_at <= ?", [at])
        db.execute("INSERT INTO sessions(token_sha256, name, created_at, expires_at) VALUES (?,?,?,?)",
                   [_token_hash(token), user.name, now(), at + ttl_s])
    return token


def session_user(db: Database, token: str | None, *, clock=time.time) -> User | None:
    """The signed-in account of a session token, or None (unknown, expired, or the account is gone)."""
    if not isinstance(token, str) or not token or len(token) > 200:
        return None
    rows = list(db.query(
        "SELECT u.* FROM sessions s JOIN users u USING (name) WHERE s.token_sha256 = ? AND s.expires_at > ?",
        [_token_hash(token), clock()]))
    return _user(rows[0]) if rows else None


def end_session(db: Database, token: str | None) -> None:
    if token:
        with immediate(db):
            db.execute("DELETE FROM sessions WHERE token_sha256 = ?", [_token_hash(token)])


# --- restricted scripts ------------------------------------------------------------------------

def restrict_script(db: Database, script_id: int, names: list[str]) -> None:
    """Only these people (and admins) see the script from now on; replaces an earlier list."""
    from store.scripts import get_script

    get_script(db, script_id)
    clean = sorted({check_name(n) for n in names})
    if not clean:
        raise AccountError("name at least one person who may see the script (or use --everyone)")
    with immediate(db):
        unknown = [n for n in clean if not db.execute("SELECT 1 FROM users WHERE name = ?", [n]).fetchone()]
        if unknown:  # a typo would otherwise hide the script from the person meant
            raise AccountError(f"no user called {', '.join(map(repr, unknown))}: add them first with `scriptlabel "
                               "users add NAME --role annotator` (an OIDC email without --password-stdin)")
        db.execute("DELETE FROM script_access WHERE script_id = ?", [script_id])
        for name in clean:
            db.execute("INSERT INTO script_access(script_id, name) VALUES (?, ?)", [script_id, name])


def unrestrict_script(db: Database, script_id: int) -> None:
    with immediate(db):
        db.execute("DELETE FROM script_access WHERE script_id = ?", [script_id])


def script_access(db: Database) -> dict[int, list[str]]:
    """Restricted scripts: script id → the names allowed to see it."""
    out: dict[int, list[str]] = {}
    for script_id, name in db.execute("SELECT script_id, name FROM script_access ORDER BY script_id, name"):
        out.setdefault(script_id, []).append(name)
    return out


def hidden_script_ids(db: Database, name: str | None) -> set[int]:
    """Restricted scripts this person is not named on (callers let admins see everything)."""
    return {int(r[0]) for r in db.execute(
        "SELECT DISTINCT script_id FROM script_access WHERE script_id NOT IN "
        "(SELECT script_id FROM script_access WHERE name = ?)", [normalize_name(name or "")])}


# --- audit log ---------------------------------------------------------------------------------

def audit(db: Database, actor: str, action: str, *, script_id: int | None = None, detail=None) -> None:
    """Append one record (its own transaction)."""
    with immediate(db):
        audit_in_transaction(db, actor, action, script_id=script_id, detail=detail)


def audit_in_transaction(db: Database, actor: str, action: str, *, script_id: int | None = None,
                         detail=None) -> None:
    """Append one record inside the caller's write transaction: the change and its record commit together,
    and a change that turns out to be a repeat (the same click twice) records nothing."""
    text = detail if isinstance(detail, str) else json.dumps(detail or {}, ensure_ascii=False, default=str)
    db.execute("INSERT INTO audit_log(at, actor, action, script_id, detail) VALUES (?,?,?,?,?)",
               [now(), actor or "anonymous", action, script_id, text[:2000]])


def audit_log(db: Database, *, limit: int = 500) -> list[dict]:
    return [dict(r) for r in db.query(
        "SELECT audit_id, at, actor, action, script_id, detail FROM audit_log ORDER BY audit_id DESC LIMIT ?",
        [limit])]
