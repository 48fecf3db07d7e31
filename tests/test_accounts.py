"""store/accounts.py and labeling/accounts/access.py: passwords, sessions, throttling, restricted scripts, audit."""

from __future__ import annotations

import pytest

from labeling.accounts import access
from store import accounts
from store.types import NotFoundError


def test_password_hash_is_salted_scrypt_and_verifies(db):
    first, second = accounts.hash_password("correct horse"), accounts.hash_password("correct horse")
    assert first.startswith("scrypt$") and first != second  # a salt per hash
    assert accounts.verify_password("correct horse", first)
    assert not accounts.verify_password("correct horsE", first)
    assert not accounts.verify_password("x", None) and not accounts.verify_password("x", "md5$abc")


def test_add_list_remove_users_never_expose_hashes(db):
    accounts.add_user(db, "ana", role="annotator", password="pw-ana-123")
    accounts.add_user(db, "Lee@Studio.example", role="lead")  # an OIDC email: no password
    users = {u.name: u for u in accounts.list_users(db)}
    assert users["ana"].has_password and users["lee@studio.example"].role == "lead"
    assert not users["lee@studio.example"].has_password
    assert "password_hash" not in vars(users["ana"])
    with pytest.raises(accounts.AccountError, match="exists already"):
        accounts.add_user(db, "ana", role="admin", password="another-pw")
    with pytest.raises(accounts.AccountError, match="needs a password"):
        accounts.add_user(db, "bob", role="annotator")
    with pytest.raises(accounts.AccountError, match="unknown role"):
        accounts.add_user(db, "bob", role="owner", password="pw-bob-123")
    accounts.remove_user(db, "ana")
    with pytest.raises(NotFoundError):
        accounts.get_user(db, "ana")


def test_sessions_expire_store_only_a_hash_and_end_on_password_change(db):
    accounts.add_user(db, "ana", role="annotator", password="pw-ana-123")
    clock = [1000.0]
    token = accounts.create_session(db, "ana", ttl_s=60, clock=lambda: clock[0])
    assert token not in str(list(db.query("SELECT * FROM sessions")))
    assert accounts.session_user(db, token, clock=lambda: clock[0]).name == "ana"
    assert accounts.session_user(db, token + "x", clock=lambda: clock[0]) is None
    clock[0] += 61
    assert accounts.session_user(db, token, clock=lambda: clock[0]) is None
    token = accounts.create_session(db, "ana")
    accounts.set_password(db, "ana", "new-pw-456")
    assert accounts.session_user(db, token) is None
    token = accounts.create_session(db, "ana")
    accounts.end_session(db, token)
    assert accounts.session_user(db, token) is None


def test_wrong_passwords_slow_the_next_tries_per_name(db):
    accounts.add_user(db, "ana", role="annotator", password="pw-ana-123")
    accounts.add_user(db, "bob", role="annotator", password="pw-bob-123")
    clock = [5000.0]
    tick = lambda: clock[0]  # noqa: E731
    for _ in range(accounts.FREE_FAILURES):
        with pytest.raises(accounts.SignInError, match="wrong name or password"):
            accounts.authenticate(db, "ana", "guess", clock=tick)
    with pytest.raises(accounts.SignInError, match="try again") as refused:
        accounts.authenticate(db, "ana", "pw-ana-123", clock=tick)  # even the right one waits
    assert refused.value.retry_after_s > 0
    assert accounts.authenticate(db, "bob", "pw-bob-123", clock=tick).name == "bob"  # per name
    clock[0] += accounts.lock_seconds(accounts.FREE_FAILURES) + 1
    assert accounts.authenticate(db, "ana", "pw-ana-123", clock=tick).role == "annotator"
    assert db.execute("SELECT COUNT(*) FROM sign_in_failures WHERE name = 'ana'").fetchone()[0] == 0
    with pytest.raises(accounts.SignInError):  # unknown names are counted too, and say nothing more
        accounts.authenticate(db, "nobody", "x", clock=tick)
    assert accounts.lock_seconds(50) == accounts.MAX_LOCK_S


def test_roles_and_restricted_scripts(db, pdf_script):
    script_id = pdf_script.script_id if hasattr(pdf_script, "script_id") else pdf_script
    accounts.add_user(db, "ana", role="annotator", password="pw-ana-123")
    accounts.add_user(db, "bob", role="annotator", password="pw-bob-123")
    ana = access.from_user(accounts.get_user(db, "ana"), via="local")
    bob = access.from_user(accounts.get_user(db, "bob"), via="local")
    boss = access.Identity("root", "admin", "local")
    assert access.can(ana, "label") and not access.can(ana, "export") and not access.can(ana, "delete")
    assert access.can(access.Identity("lee", "lead", "local"), "rollback")
    with pytest.raises(access.PermissionDeniedError, match="needs the admin role"):
        access.require(ana, "ingest")
    accounts.restrict_script(db, script_id, ["ana"])
    assert access.hidden_scripts(db, ana) == set() and access.hidden_scripts(db, bob) == {script_id}
    assert access.hidden_scripts(db, boss) == set()
    with pytest.raises(NotFoundError):
        access.require_script(db, bob, script_id)
    accounts.unrestrict_script(db, script_id)
    assert access.hidden_scripts(db, bob) == set()


def test_audit_log_keeps_records_in_order(db):
    accounts.audit(db, "ana", "sign_in")
    accounts.audit(db, "root", "delete", script_id=7, detail={"title": "Draft"})
    log = accounts.audit_log(db)
    assert [r["action"] for r in log] == ["delete", "sign_in"] and log[0]["script_id"] == 7


def test_loopback_and_serve_host_check(db):
    assert access.is_loopback("127.0.0.1") and access.is_loopback("::1") and access.is_loopback("localhost")
    assert not access.is_loopback("0.0.0.0") and not access.is_loopback("192.168.1.5")
    access.check_serve_host(db, "127.0.0.1", oidc=False)
    with pytest.raises(access.ScriptlabelError, match="refusing to serve on 0.0.0.0"):
        access.check_serve_host(db, "0.0.0.0", oidc=False)
    access.check_serve_host(db, "0.0.0.0", oidc=True)
    accounts.add_user(db, "root", role="admin", password="pw-root-123")
    access.check_serve_host(db, "0.0.0.0", oidc=False)


def test_oidc_configured_reads_the_auth_section(tmp_path):
    secrets = tmp_path / "secrets.toml"
    assert not access.oidc_configured([secrets])
    secrets.write_text('[auth]\nredirect_uri = "http://x/oauth2callback"\ncookie_secret = "s"\n'
                       'client_id = "id"\nclient_secret = "c"\nserver_metadata_url = "https://idp/.well-known"\n')
    assert access.oidc_configured([secrets])
