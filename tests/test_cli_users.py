"""`scriptlabel users ...`, `restrict`, `serve --host` refusal and the loopback default."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import pytest

from conftest import REPO
from labeling.cli import cli as cli_group


def test_users_add_list_passwd_remove(cli, db_path):
    result = cli.runner.invoke(__import__("labeling.cli", fromlist=["cli"]).cli,
                               ["--db", str(db_path), "users", "add", "ana", "--role", "annotator",
                                "--password-stdin"], input="pw-ana-123\n")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"name": "ana", "role": "annotator", "password": True}
    rows = cli.json_lines("users", "list")
    assert [r["name"] for r in rows] == ["ana"] and "hash" not in json.dumps(rows)
    assert "scrypt" not in json.dumps(rows)
    assert cli.runner.invoke(__import__("labeling.cli", fromlist=["cli"]).cli,
                             ["--db", str(db_path), "users", "passwd", "ana", "--password-stdin"],
                             input="new-pw-456\n").exit_code == 0
    from store import accounts
    from store.db import open_db

    db = open_db(db_path)
    assert accounts.authenticate(db, "ana", "new-pw-456").name == "ana"
    assert cli("users", "remove", "ana").exit_code == 0
    assert cli.json_lines("users", "list") == []
    actions = [r["action"] for r in accounts.audit_log(db)]
    assert {"user_add", "user_passwd", "user_remove"} <= set(actions)


def test_users_errors_are_one_line(cli, db_path):
    from labeling.cli import cli as command

    empty = cli.runner.invoke(command, ["--db", str(db_path), "users", "add", "ana", "--role", "lead",
                                        "--password-stdin"], input="")
    assert empty.exit_code == 1 and empty.stderr.startswith("error: no password")
    assert len(empty.stderr.strip().splitlines()) == 1
    no_pw = cli("users", "add", "ana", "--role", "lead")
    assert no_pw.exit_code == 1 and "needs a password" in no_pw.stderr
    oidc = cli.json_lines("users", "add", "Lee@Studio.example", "--role", "lead")
    assert oidc == [{"name": "lee@studio.example", "role": "lead", "password": False}]
    bad_role = cli("users", "add", "bob", "--role", "owner", "--password-stdin")
    assert bad_role.exit_code == 2
    gone = cli("users", "remove", "nobody")
    assert gone.exit_code == 1 and "no user called" in gone.stderr


def test_restrict_a_script(cli, pdf_script):
    script_id = pdf_script.script_id if hasattr(pdf_script, "script_id") else pdf_script
    assert "no user called 'ana'" in cli("restrict", str(script_id), "ana").stderr  # add people first
    for name in ("ana", "bob"):
        added = cli.runner.invoke(cli_group, ["--db", str(cli.db_file), "users", "add", name, "--role", "annotator",
                                              "--password-stdin"], input=f"pw-{name}-123\n")
        assert added.exit_code == 0, added.stderr
    assert cli.json_lines("restrict", str(script_id), "ana", "bob") == [{"script_id": script_id,
                                                                          "names": ["ana", "bob"]}]
    assert cli.json_lines("restrict", str(script_id), "--everyone") == [{"script_id": script_id, "names": []}]
    assert cli("restrict", "999", "ana").exit_code == 1


def test_serve_refuses_a_network_address_without_sign_in(cli, db_path, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # no .streamlit/secrets.toml here
    monkeypatch.setattr("labeling.accounts.access.oidc_configured", lambda *a, **k: False)
    result = cli("serve", "--host", "0.0.0.0", "--no-sample")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: refusing to serve on 0.0.0.0")
    assert len(result.stderr.strip().splitlines()) == 1


def _wait_listening(port: int, proc, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"serve exited with {proc.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.3)
    raise AssertionError("serve did not start listening")


def _non_loopback_address() -> str | None:
    try:
        out = subprocess.run(["hostname", "-I"], capture_output=True, text=True, timeout=5).stdout.split()
    except (OSError, subprocess.SubprocessError):
        out = []
    return next((a for a in out if not a.startswith("127.") and ":" not in a), None)


@pytest.mark.slow
def test_serve_listens_on_loopback_only_by_default(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = dict(os.environ, SCRIPTLABEL_SAMPLE="0")
    proc = subprocess.Popen([sys.executable, "-m", "labeling", "--db", str(tmp_path / "s.db"), "serve",
                             "--port", str(port), "--no-sample"], cwd=REPO, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_listening(port, proc)
        try:
            listening = subprocess.run(["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True,
                                       timeout=10).stdout
        except FileNotFoundError:
            listening = None
        if listening is not None:
            local = {line.split()[3] for line in listening.splitlines() if line.strip()}
            assert local == {f"127.0.0.1:{port}"}, listening
        address = _non_loopback_address()
        if address is None:
            if listening is None:
                pytest.skip("neither `ss` nor a non-loopback address on this machine to check from")
            return
        with socket.socket() as sock:
            sock.settimeout(3)
            assert sock.connect_ex((address, port)) != 0, f"reachable on {address}:{port}"
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=30)


@pytest.mark.slow
def test_streamlit_run_directly_on_a_network_address_also_refuses(tmp_path):
    env = dict(os.environ, SCRIPTLABEL_DB=str(tmp_path / "s.db"), SCRIPTLABEL_SAMPLE="0")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    done = subprocess.run([sys.executable, "-m", "streamlit", "run", str(REPO / "app_server.py"), "--server.port",
                           str(port), "--server.headless", "true", "--server.address", "0.0.0.0"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "error: refusing to serve on 0.0.0.0" in done.stdout + done.stderr
