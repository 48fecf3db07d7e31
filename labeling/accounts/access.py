"""Who is acting and what they may do: identities, roles, restricted scripts, whether sign-in is on.

Sign-in is on when the database has any account or `[auth]` (Streamlit's OpenID Connect) is configured in
`.streamlit/secrets.toml`; otherwise the app is single-user on loopback and the person types a name.
Every action re-checks the role where it runs (`require`), not only by hiding a button.
Nothing here imports Streamlit.
"""

from __future__ import annotations

import ipaddress
import tomllib
from dataclasses import dataclass
from pathlib import Path

from sqlite_utils import Database

from store import accounts
from store.types import ScriptlabelError

REPO = Path(__file__).resolve().parents[2]
ROLES = accounts.ROLES
# The least role that may do each thing (DESIGN: annotator < lead < admin).
PERMISSIONS = {
    "label": "annotator", "rate": "annotator", "tag": "annotator", "flag": "annotator", "edit": "annotator",
    "adjudicate": "lead", "train": "lead", "rollback": "lead", "export": "lead", "scheme": "lead",
    # changes that rewrite many rows or the project for everyone (issue 24): leads only
    "restructure": "lead", "departments": "lead", "bulk_accept": "lead", "overlap": "lead", "team": "lead",
    "ingest": "admin", "delete": "admin", "users": "admin", "restrict": "admin",
}


class PermissionDeniedError(ScriptlabelError):
    """The signed-in person's role does not allow this action."""


class SignInRequiredError(ScriptlabelError):
    """Sign-in is configured and this request carries no valid session."""


@dataclass(frozen=True)
class Identity:
    """The person behind a request. `via`: local (password), oidc (identity provider) or single-user."""

    name: str
    role: str
    via: str

    @property
    def signed_in(self) -> bool:
        return self.via != "single-user"


def can(identity: Identity | None, action: str) -> bool:
    if identity is None:
        return False
    needed = PERMISSIONS[action]
    return ROLES.index(identity.role) >= ROLES.index(needed)


def require(identity: Identity | None, action: str) -> Identity:
    """The identity when its role allows `action`; else PermissionDeniedError naming the role needed."""
    if identity is None:
        raise SignInRequiredError("sign in first")
    if not can(identity, action):
        raise PermissionDeniedError(f"{identity.name} ({identity.role}) may not {action.replace('_', ' ')}: "
                                    f"that needs the {PERMISSIONS[action]} role; ask an admin")
    return identity


def single_user(name: str) -> Identity:
    """Loopback without accounts: whoever sits at this machine may do everything, under the name typed."""
    return Identity(name=name, role="admin", via="single-user")


def from_user(user: accounts.User, *, via: str) -> Identity:
    return Identity(name=user.name, role=user.role, via=via)


def oidc_identity(db: Database, email: str) -> Identity:
    """An OIDC user: identity = email, role from the users table, annotator when not listed."""
    user = accounts.find_user(db, email)
    name = accounts.normalize_name(email)
    return Identity(name=name, role=user.role if user else "annotator", via="oidc")


def hidden_scripts(db: Database, identity: Identity | None) -> set[int]:
    """Script ids this identity must never see (admins and single-user mode see every script)."""
    if identity is not None and identity.role == "admin":
        return set()
    return accounts.hidden_script_ids(db, identity.name if identity else None)


def require_script(db: Database, identity: Identity | None, script_id: int) -> None:
    """Raises NotFoundError for a script this person may not see (as if it did not exist)."""
    from store.types import NotFoundError

    if script_id in hidden_scripts(db, identity):
        raise NotFoundError(f"no script with id {script_id}")


# --- configuration -----------------------------------------------------------------------------

def oidc_configured(secrets_paths: list[Path] | None = None) -> bool:
    """True when a `[auth]` section with a provider is in `.streamlit/secrets.toml` (project or home)."""
    paths = secrets_paths if secrets_paths is not None else [
        Path.cwd() / ".streamlit" / "secrets.toml", REPO / ".streamlit" / "secrets.toml",
        Path.home() / ".streamlit" / "secrets.toml"]
    for path in paths:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
            continue
        auth = data.get("auth")
        if isinstance(auth, dict) and auth.get("cookie_secret") and (
                auth.get("client_id") or any(isinstance(v, dict) and v.get("client_id") for v in auth.values())):
            return True
    return False


def oidc_providers(secrets_paths: list[Path] | None = None) -> list[str | None]:
    """Providers for st.login: [None] for a single provider in [auth], else the names of [auth.NAME] sections."""
    paths = secrets_paths if secrets_paths is not None else [
        Path.cwd() / ".streamlit" / "secrets.toml", REPO / ".streamlit" / "secrets.toml",
        Path.home() / ".streamlit" / "secrets.toml"]
    for path in paths:
        try:
            auth = tomllib.loads(path.read_text(encoding="utf-8")).get("auth")
        except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
            continue
        if isinstance(auth, dict):
            named = [k for k, v in auth.items() if isinstance(v, dict) and v.get("client_id")]
            return named if named and not auth.get("client_id") else [None]
    return [None]


def sign_in_enabled(db: Database, *, oidc: bool | None = None) -> bool:
    """Any account in the database, or OIDC configured: every page asks for sign-in first."""
    return accounts.has_accounts(db) or (oidc_configured() if oidc is None else oidc)


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 and `localhost`; everything else (0.0.0.0, a LAN address, a name) reaches the network."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip().strip("[]")).is_loopback
    except ValueError:
        return False


def check_serve_host(db: Database, host: str, *, oidc: bool | None = None) -> None:
    """Refuse a network address unless sign-in is configured (issue 11: safe by default)."""
    if is_loopback(host):
        return
    if accounts.has_local_accounts(db) or (oidc_configured() if oidc is None else oidc):
        return
    raise ScriptlabelError(
        f"refusing to serve on {host}: anyone on the network could read and change every script; "
        "add an account first (scriptlabel users add NAME --role admin --password-stdin) "
        "or configure [auth] in .streamlit/secrets.toml")
