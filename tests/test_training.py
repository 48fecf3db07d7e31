"""Background workers (labeling/training/runs.py, labeling/processes.py): absolute paths into the worker,
reaped children, signals forwarded by `serve`, model versions pruned, a run killed after it
registered its version reported truthfully."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO, SCREENPLAY_LINES, make_text_pdf
from labeling.ingest.pipeline import ingest_path
from labeling.processes import start_detached
from labeling.training.runs import reap_dead_runs
from store import labels as label_store
from store import models as model_store
from store import scripts as script_store
from store.db import data_dir, open_db


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _state(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
    except OSError:
        return None


@pytest.mark.slow
def test_train_wait_with_a_relative_db_path(tmp_path):
    work = tmp_path / "work"
    db = open_db(work / "rel" / "x.db")
    script_id = ingest_path(db, make_text_pdf(tmp_path / "a.pdf", pages=2)).script_id
    lines = script_store.lines_frame(db, script_id)
    for line_id, (_, _, label) in zip(lines["line_id"], SCREENPLAY_LINES):
        label_store.add_label(db, int(line_id), label, annotator="ana")
    db.close()
    done = subprocess.run([sys.executable, "-m", "labeling.cli", "--db", "rel/x.db", "train", "--wait", "--timeout",
                           "600"], cwd=work, capture_output=True, text=True, timeout=900,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr
    run = json.loads(done.stdout.splitlines()[-1])
    assert run["status"] == "done" and run["version"] >= 1
    assert not (REPO / "rel").exists()  # no stray database beside the project
    assert sorted(p.name for p in (work / "rel").iterdir() if p.suffix == ".db") == ["x.db"]


def test_worker_killed_after_registering_its_version_is_not_reported_as_failed(db, tmp_path):
    run_id = model_store.create_run(db, kind="lines")
    model_store.start_run(db, run_id, pid=_dead_pid())
    folder = data_dir(db) / "models" / "lines" / "adapter-x"
    folder.mkdir(parents=True)
    version = model_store.register_version(db, kind="lines", path=str(folder), metrics={"acc": 0.9}, n_labels=12)
    assert reap_dead_runs(db) == 1
    run = model_store.get_run(db, run_id)
    assert run["status"] == "done" and run["version"] == version and run["n_labels"] == 12
    assert "previous model stays current" not in (run["error"] or "")
    assert model_store.current_version(db, "lines").version == version


def test_worker_killed_before_registering_keeps_the_previous_model(db):
    before = model_store.register_version(db, kind="lines", path="/nowhere", metrics={}, n_labels=1)
    run_id = model_store.create_run(db, kind="lines")
    model_store.start_run(db, run_id, pid=_dead_pid())
    reap_dead_runs(db)
    run = model_store.get_run(db, run_id)
    assert run["status"] == "failed" and "previous model stays current" in run["error"]
    assert model_store.current_version(db, "lines").version == before


def test_old_model_versions_are_pruned_but_never_the_current_or_a_pinned_one(db, tmp_path):
    root = data_dir(db) / "models" / "lines"
    versions = []
    for i in range(14):
        folder = root / f"adapter-{i}"
        folder.mkdir(parents=True)
        (folder / "adapter.ubj").write_bytes(b"{}")
        versions.append(model_store.register_version(db, kind="lines", path=str(folder), metrics={}, n_labels=i))
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    other = model_store.register_version(db, kind="complexity", department="fx", path=str(outside), metrics={},
                                         n_labels=0)
    model_store.set_pinned(db, versions[1])
    model_store.set_current(db, versions[2])
    removed = model_store.prune_versions(db, kind="lines", keep=10)
    assert sorted(removed) == sorted([str(root / "adapter-0"), str(root / "adapter-3")])
    kept = {v["version"] for v in model_store.list_versions(db, "lines")}
    assert kept == set(versions) - {versions[0], versions[3]}
    assert not (root / "adapter-0").exists() and (root / "adapter-1").exists() and (root / "adapter-2").exists()
    assert model_store.prune_versions(db, kind="complexity", department="fx", keep=0) == []  # current: kept
    assert outside.exists() and model_store.get_version(db, other)


def test_finished_workers_are_reaped(tmp_path):
    procs = [start_detached([sys.executable, "-c", "pass"], log_path=tmp_path / "logs" / f"{i}.log")
             for i in range(3)]
    deadline = time.monotonic() + 30
    while any(_state(p.pid) is not None for p in procs):
        assert time.monotonic() < deadline, [(p.pid, _state(p.pid)) for p in procs]
        time.sleep(0.05)
    assert all(p.returncode == 0 for p in procs)  # waited for: gone from the process table, no zombie


def test_serve_forwards_sigterm_to_its_child():
    code = ("import sys; from labeling.processes import run_forwarding_signals; "
            "sys.exit(run_forwarding_signals([sys.executable, '-c', "
            "'import os, time; print(os.getpid(), flush=True); time.sleep(120)']))")
    parent = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stdout=subprocess.PIPE, text=True)
    child = int(parent.stdout.readline())
    parent.send_signal(signal.SIGTERM)
    assert parent.wait(timeout=20) != 0
    deadline = time.monotonic() + 10
    while _state(child) not in (None, "Z"):
        assert time.monotonic() < deadline, "the child kept running after its parent was stopped"
        time.sleep(0.05)


@pytest.mark.slow
def test_serve_stops_its_streamlit_child_on_sigterm(tmp_path):
    import socket
    import urllib.request

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    serve = subprocess.Popen([sys.executable, "-m", "labeling.cli", "--db", str(tmp_path / "s.db"), "serve",
                              "--port", str(port), "--no-sample"], cwd=REPO, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as response:
                    if response.read() == b"ok":
                        break
            except OSError:
                assert time.monotonic() < deadline, "streamlit did not start"
                time.sleep(0.3)
        children = [int(pid) for pid in Path(f"/proc/{serve.pid}/task/{serve.pid}/children").read_text().split()]
        assert children
        serve.send_signal(signal.SIGTERM)  # only `serve` itself: forwarding must stop the child
        serve.wait(timeout=30)
        deadline = time.monotonic() + 15
        while any(_state(pid) not in (None, "Z") for pid in children):
            assert time.monotonic() < deadline, "streamlit kept running after serve was stopped"
            time.sleep(0.1)
    finally:
        if serve.poll() is None:
            os.killpg(serve.pid, signal.SIGKILL)
