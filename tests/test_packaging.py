"""The wheel holds the app: built, installed into a fresh virtualenv outside the checkout, `scriptlabel
serve` from another folder answers a real HTTP request with the app's page and its own routes."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
APP_FILES = ("streamlit_app.py", "app_server.py", ".streamlit/config.toml", "sample_scripts/tim_time.pdf",
             "app_pages/scripts.py", "app_pages/label_view/view.js", "app_pages/label_view/view.html",
             "app_pages/label_view/view.css", "app_pages/icon.png", "models/pretrained/lines/config.json")


def _uv() -> str:
    uv = shutil.which("uv")
    assert uv, "uv is needed to build the wheel (./setup.sh installs it)"
    return uv


def _build(tmp_path: Path) -> Path:
    out = tmp_path / "dist"
    subprocess.run([_uv(), "build", "--wheel", "--out-dir", str(out)], cwd=REPO, check=True, capture_output=True)
    return next(out.glob("scriptlabel-*.whl"))


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8", "replace")


@pytest.mark.slow
def test_the_wheel_holds_the_app(tmp_path):
    names = set(zipfile.ZipFile(_build(tmp_path)).namelist())
    assert [name for name in APP_FILES if name not in names] == []


@pytest.mark.slow
def test_the_installed_wheel_serves_the_app_from_any_folder(tmp_path):
    wheel = _build(tmp_path)
    # Dependencies at the versions of uv.lock (from uv's cache when it has them, else from PyPI).
    pins = tmp_path / "pins.txt"
    pins.write_text(subprocess.run([_uv(), "export", "--frozen", "--no-dev", "--no-hashes", "--no-emit-project",
                                    "-q"], cwd=REPO, check=True, capture_output=True, text=True).stdout)
    venv = tmp_path / "venv"
    clean_env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "UV_PROJECT")}
    subprocess.run([_uv(), "venv", "-q", str(venv)], cwd=tmp_path, check=True, env=clean_env)
    subprocess.run([_uv(), "pip", "install", "-q", "--python", str(venv / "bin" / "python"), "-c", str(pins),
                    str(wheel)], cwd=tmp_path, check=True, env=clean_env, timeout=900)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([str(venv / "bin" / "scriptlabel"), "--db", str(elsewhere / "app.db"), "serve",
                               "--port", str(port), "--no-sample"], cwd=elsewhere, env=clean_env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and server.poll() is None:
            try:
                if _get(f"{base}/_stcore/health")[0] == 200:
                    break
            except OSError:
                time.sleep(0.5)
        assert server.poll() is None, server.stdout.read().decode()
        status, page = _get(f"{base}/")
        assert status == 200 and "streamlit" in page.lower()
        status, sign_in = _get(f"{base}/api/account/login")  # the app's own route (app_server.py), not Streamlit's
        assert status == 200 and 'name="password"' in sign_in
        status, _ = _get(f"{base}/api/label/jump?script_id=1&line_no=1")
        assert status == 403  # the labeling view's route, refusing a request without the view's header
    finally:
        server.send_signal(signal.SIGTERM)  # serve passes it on to its Streamlit child
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
    assert not (REPO / "app.db").exists() and (elsewhere / "app.db").exists()
