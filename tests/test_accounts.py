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


# --- issue 23 item 1: the lockout holds against parallel tries ------------------------------------

def _count_checks(monkeypatch, db, name: str) -> list[str]:
    """Passwords actually checked against `name`'s stored hash (the real scrypt runs underneath)."""
    import threading

    stored = db.execute("SELECT password_hash FROM users WHERE name = ?", [name]).fetchone()[0]
    checked, lock = [], threading.Lock()
    real = accounts.verify_password

    def counting(password, hashed):
        if hashed == stored:
            with lock:
                checked.append(password)
        return real(password, hashed)

    monkeypatch.setattr(accounts, "verify_password", counting)
    return checked


def _try(db_path, name, password, *, client="10.0.0.7", barrier=None, at=5000.0) -> str:
    from store.db import open_db

    conn = open_db(db_path)  # one connection per thread, as the app's routes have
    try:
        if barrier is not None:
            barrier.wait()
        accounts.authenticate(conn, name, password, client=client, clock=lambda: at)
        return "signed-in"
    except accounts.SignInError as exc:
        return "locked" if exc.retry_after_s else "wrong"
    finally:
        conn.close()


def test_twenty_parallel_wrong_passwords_check_at_most_three(db_path, db, monkeypatch):
    import threading
    from concurrent.futures import ThreadPoolExecutor

    accounts.add_user(db, "ana", role="annotator", password="pw-ana-123")
    checked = _count_checks(monkeypatch, db, "ana")
    barrier = threading.Barrier(20)
    with ThreadPoolExecutor(20) as pool:
        results = list(pool.map(lambda i: _try(db_path, "ana", f"guess-{i}", client=f"10.0.0.{i}",
                                               barrier=barrier), range(20)))
    assert len(checked) <= accounts.FREE_FAILURES
    assert results.count("wrong") == len(checked) and results.count("locked") == 20 - len(checked)
    failures = db.execute("SELECT failures FROM sign_in_failures WHERE name = 'ana'").fetchone()[0]
    assert failures == len(checked)  # every check counted, none lost to a race


def test_the_right_password_amid_parallel_wrong_ones_is_refused_once_locked(db_path, db, monkeypatch):
    """9 wrong + 1 right at once: the right one arrives while three wrong checks are still running
    (none of them has finished): the lockout applies to it, so it does not sign in."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    accounts.add_user(db, "ana", role="annotator", password="pw-ana-123")
    checked = _count_checks(monkeypatch, db, "ana")
    stored = db.execute("SELECT password_hash FROM users WHERE name = 'ana'").fetchone()[0]
    real, right = accounts.verify_password, {}
    started, lock = [], threading.Lock()

    def during_the_third_check(password, hashed):
        with lock:
            started.append(password)
            third = hashed == stored and len(started) == accounts.FREE_FAILURES and not right
            if third:
                right["started"] = True
        if third:  # the right password comes in now, in its own thread, while this check is running
            runner = threading.Thread(target=lambda: right.update(
                result=_try(db_path, "ana", "pw-ana-123", client="10.0.0.99")))
            runner.start()
            runner.join()
        return real(password, hashed)

    monkeypatch.setattr(accounts, "verify_password", during_the_third_check)
    barrier = threading.Barrier(9)
    with ThreadPoolExecutor(9) as pool:
        wrong = list(pool.map(lambda i: _try(db_path, "ana", f"guess-{i}", client=f"10.0.1.{i}",
                                             barrier=barrier), range(9)))
    assert right["result"] == "locked"
    assert db.execute("SELECT COUNT(*) FROM sessions").fetchone()[0] == 0
    assert len([p for p in checked if p != "pw-ana-123"]) <= accounts.FREE_FAILURES
    assert wrong.count("wrong") <= accounts.FREE_FAILURES


def test_one_address_trying_many_names_is_slowed_too(db_path, db, monkeypatch):
    import threading
    from concurrent.futures import ThreadPoolExecutor

    names = [f"user{i}" for i in range(30)]
    for name in names[:3]:
        accounts.add_user(db, name, role="annotator", password=f"pw-{name}-123")
    barrier = threading.Barrier(30)
    with ThreadPoolExecutor(30) as pool:
        results = list(pool.map(lambda n: _try(db_path, n, "guess", client="203.0.113.5", barrier=barrier),
                                names))
    assert results.count("wrong") == accounts.FREE_CLIENT_FAILURES
    assert results.count("locked") == 30 - accounts.FREE_CLIENT_FAILURES
    # another address is not slowed by it, and a right password there resets nothing for the first one
    assert _try(db_path, "user0", "pw-user0-123", client="198.51.100.1") == "signed-in"
    assert _try(db_path, "user1", "pw-user1-123", client="203.0.113.5") == "locked"


def test_unknown_names_cost_one_scrypt_like_known_ones(db, monkeypatch):
    """A constant-time answer: an unknown name runs exactly one scrypt with the same cost as a real hash."""
    import hashlib

    accounts.add_user(db, "ana", role="annotator", password="pw-ana-123")
    costs = []
    real = hashlib.scrypt

    def counting(*args, **kwargs):
        costs.append((kwargs["n"], kwargs["r"], kwargs["p"]))
        return real(*args, **kwargs)

    monkeypatch.setattr(hashlib, "scrypt", counting)
    for name in ("ana", "nobody", "bad name with spaces", "lee@oidc.example"):
        costs.clear()
        with pytest.raises(accounts.SignInError):
            accounts.authenticate(db, name, "guess", client="10.9.9.9", clock=lambda: 1.0)
        assert costs == [(accounts.SCRYPT_N, accounts.SCRYPT_R, accounts.SCRYPT_P)], name
