"""labeling/training/runs.py: runs requested with their parameters, run by a worker, reaped when it dies."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import SAMPLE_DIR
from labeling.training.complexity import sequence_docs
from labeling.training.runs import execute_run, reap_dead_runs, request_training, wait_for_run
from store import models as model_store
from store import sequences as sequence_store


def test_a_run_row_carries_the_parameters_it_was_requested_with(db):
    run_id = model_store.create_run(db, kind="complexity", department="fx", params={"models": "baselines"})
    assert model_store.get_run(db, run_id)["params"] == {"models": "baselines"}
    assert model_store.get_run(db, model_store.create_run(db, kind="lines"))["params"] == {"trigger": "manual"}


@pytest.fixture
def rated(cli, db):
    cli.json_lines("ingest", str(SAMPLE_DIR / "tim_time.fountain"))
    for doc in sequence_docs(db):
        chars = doc.counts["distinct_characters"]
        sequence_store.add_rating(db, int(doc.sequence_id), 1 if chars == 0 else 2 if chars == 1 else 3,
                                  department="fx", annotator="lead")


def test_the_worker_trains_with_the_models_on_the_run_row(db, rated):
    run_id = model_store.create_run(db, kind="complexity", department="fx", params={"models": "baselines"})
    run = execute_run(db, run_id)
    assert run["status"] == "done" and run["version"] is not None
    compared = set(run["metrics"]["cv"])
    assert "majority" in compared and not any(name.startswith("bilstm") for name in compared)


def test_a_run_whose_worker_died_is_marked_failed(db):
    run_id = model_store.create_run(db, kind="lines")
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    model_store.start_run(db, run_id, pid=gone.pid)
    assert reap_dead_runs(db) == 1
    run = model_store.get_run(db, run_id)
    assert run["status"] == "failed" and "stopped before finishing" in run["error"]
    assert reap_dead_runs(db) == 0


def test_a_requested_run_is_done_by_a_worker_process_given_a_relative_path(cli, db, monkeypatch, rated):
    monkeypatch.chdir(cli.db_file.parent)
    run_id = request_training(cli.db_file.name, kind="complexity", department="fx", params={"models": "baselines"})
    assert request_training(cli.db_file.name, kind="complexity", department="fx") == run_id  # one at a time
    run = wait_for_run(db, run_id, timeout_s=600)
    assert run["status"] == "done" and run["pid"] and run["params"] == {"models": "baselines"}
    assert not any(name.startswith("bilstm") for name in run["metrics"]["cv"])


def test_train_models_flag_reaches_the_worker_on_the_run_row(cli, db, rated):
    [out] = cli.json_lines("train", "--target", "complexity", "--department", "fx", "--models", "baselines",
                           "--wait", "--timeout", "600")
    run = model_store.get_run(db, out["run_id"])
    assert run["status"] == "done" and run["params"] == {"models": "baselines"} and run["trigger"] == "cli"
    assert not any(name.startswith("bilstm") for name in out["cv"])


def test_a_line_worker_stays_warm_and_runs_the_next_line_run_itself(cli, db, monkeypatch):
    import os
    import signal
    import time

    from labeling.training.runs import warm_worker

    monkeypatch.setenv("SCRIPTLABEL_WARM_WORKER_S", "60")
    [pdf] = cli.json_lines("ingest", str(SAMPLE_DIR / "tim_time.pdf"))
    items = cli.json_lines("queue", "--n", "40", "--seed", "3")
    for item in items[:10]:
        cli.json_lines("label", str(item["line_id"]), item["suggestion"])
    first = wait_for_run(db, request_training(cli.db_file, kind="lines"), timeout_s=600)
    pid = first["pid"]
    try:
        deadline = time.monotonic() + 120  # after the library re-prediction, it waits for the next run
        while warm_worker(db) != pid and time.monotonic() < deadline:
            time.sleep(0.2)
        assert warm_worker(db) == pid
        for item in items[10:20]:
            cli.json_lines("label", str(item["line_id"]), item["suggestion"])
        second = wait_for_run(db, request_training(cli.db_file, kind="lines"), timeout_s=600)
        assert second["pid"] == pid and second["status"] == "done" and second["version"] > first["version"]
        assert model_store.current_version(db).version == second["version"]
    finally:
        os.kill(pid, signal.SIGTERM)  # the worker this test started; it would leave by itself after 60 s idle
