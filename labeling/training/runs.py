"""Background training: runs are requested here and executed by a worker process (labeling.training.worker).

A run reads a snapshot of the labels, writes the model into a temporary folder, renames it into
place and only then registers it as current (one transaction). A run killed at any point leaves the
previous model current and every label intact; its row is marked failed when noticed.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from sqlite_utils import Database

from labeling.settings import process_defaults
from store import models as model_store
from store.db import data_dir, open_db
from store.types import ScriptlabelError

DEFAULT_RETRAIN_EVERY = 10
DEFAULT_RATE_RETRAIN_EVERY = 5  # new ratings in a department before its complexity models retrain
DEFAULT_RELABEL_RETRAIN_EVERY = 10  # line relabels inside rated sequences before they retrain
RATINGS_TRIGGER = "auto-ratings"
RELABELS_TRIGGER = "auto-relabels"
FAILED_BACKOFF_S = 120.0


def _age_s(stamp: str | None) -> float:
    import datetime as dt

    if not stamp:
        return float("inf")
    return (dt.datetime.now(dt.timezone.utc) - dt.datetime.fromisoformat(stamp)).total_seconds()


class TrainingError(ScriptlabelError):
    pass


def _pid_alive(pid: int | None) -> bool:
    """A running worker (a zombie, finished but not yet reaped, counts as gone)."""
    from store.jobs import process_alive

    return process_alive(pid)


def reap_dead_runs(db: Database) -> int:
    """Mark runs whose worker died (killed, crashed machine) as failed; returns how many."""
    count = 0
    for run in model_store.active_runs(db):
        if run["status"] == "running" and not _pid_alive(run["pid"]):
            registered = model_store.version_registered_during(db, run)
            if registered is not None:  # killed after its version became current: the run did finish
                model_store.finish_run(db, run["run_id"], version=registered["version"],
                                       n_labels=registered["n_labels"], metrics=registered["metrics"],
                                       duration_s=None)
                count += 1
                continue
            model_store.fail_run(db, run["run_id"], error="the training worker stopped before finishing "
                                 "(killed or crashed); the previous model stays current — retrain to try again")
            count += 1
        elif run["status"] == "queued" and run["pid"] and not _pid_alive(run["pid"]):
            model_store.fail_run(db, run["run_id"], error="the training worker never started; retrain to try again")
            count += 1
    return count


def request_training(db_path: str | Path, *, kind: str = "lines", trigger: str = "manual",
                     department: str | None = None, params: dict | None = None, wait: bool = False,
                     timeout_s: float = 600) -> int:
    """Queue a training run and start a worker process for it; returns the run id.

    `params` go on the run's row and the worker trains with them: {"models": "all" | "baselines"} picks
    the complexity models compared. If a run of the same kind is already queued or running, that run's
    id is returned instead.
    """
    if kind not in ("lines", "complexity", "tags"):
        raise TrainingError(f"unknown training target {kind!r}: use lines, complexity or tags")
    db_path = Path(db_path).resolve()
    db = open_db(db_path)
    reap_dead_runs(db)
    active = [r for r in model_store.active_runs(db, kind) if r["department"] == department]
    if active:
        run_id = active[0]["run_id"]
    elif kind == "lines" and (warm := warm_worker(db)) is not None:
        # A worker that just finished a line run waits, models loaded, for the next: hand it this one.
        run_id = model_store.create_run(db, kind=kind, trigger=trigger, department=department, params=params)
        model_store.set_run_pid(db, run_id, warm)
    else:
        run_id = model_store.create_run(db, kind=kind, trigger=trigger, department=department, params=params)
        from labeling.processes import start_detached

        proc = start_detached(  # an absolute --db: the worker runs from the project folder, not the caller's
            [sys.executable, "-m", "labeling.training.worker", "--db", str(db_path), "--run", str(run_id)],
            log_path=data_dir(db) / "logs" / f"train-{run_id}.log",
            env=process_defaults(dict(os.environ, KERAS_BACKEND="jax",
                                      OMP_THREAD_LIMIT=os.environ.get("OMP_THREAD_LIMIT", "2"))),
            cwd=Path(__file__).resolve().parents[2],
        )
        model_store.set_run_pid(db, run_id, proc.pid)
    if wait:
        wait_for_run(db, run_id, timeout_s=timeout_s)
    return run_id


WARM_MARGIN_S = 5.0  # a warm worker about to leave is not handed a run


def warm_worker(db: Database) -> int | None:
    """The pid of a worker waiting for the next line run (`serve_warm`), if one is alive and staying."""
    recent = model_store.list_runs(db, kind="lines", limit=1)
    if not recent:
        return None
    run = model_store.get_run(db, recent[0]["run_id"])
    until = (run["params"] or {}).get("warm_until")
    if run["status"] != "done" or not until or not _pid_alive(run["pid"]):
        return None
    return int(run["pid"]) if -_age_s(until) > WARM_MARGIN_S else None


def serve_warm(db: Database, last_run: int, *, idle_s: float, poll_s: float = 0.1,
               auto_complexity_models: str = "baselines") -> int:
    """Stay up after a line run and execute the line runs handed to this process (`request_training`
    gives a new run this pid while `warm_until` on the newest run is ahead); leave after `idle_s` idle.
    Returns the exit code."""
    import datetime as dt

    pid = os.getpid()
    while True:
        until = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=idle_s)
        model_store.add_run_params(db, last_run, {"warm_until": until.isoformat()})
        deadline = time.monotonic() + idle_s
        mine = None
        while mine is None and time.monotonic() < deadline:
            mine = next((r for r in model_store.active_runs(db, "lines")
                         if r["status"] == "queued" and r["pid"] == pid), None)
            if mine is None:
                time.sleep(poll_s)
        if mine is None:
            model_store.add_run_params(db, last_run, {"warm_until": None})
            return 0
        try:
            run = execute_run(db, mine["run_id"], auto_complexity_models=auto_complexity_models)
        except Exception as exc:  # recorded on the run row
            print(f"training run {mine['run_id']} failed: {exc}", file=sys.stderr)
            return 1
        last_run = run["run_id"]


def wait_for_run(db: Database, run_id: int, *, timeout_s: float = 600, poll_s: float = 0.2) -> dict:
    """Block until the run is done or failed; raises TrainingError on failure or timeout."""
    deadline = time.monotonic() + timeout_s
    while True:
        run = model_store.get_run(db, run_id)
        if run["status"] == "done":
            return run
        if run["status"] == "failed":
            raise TrainingError(f"training run {run_id} failed: {run['error']}")
        if time.monotonic() > deadline:
            raise TrainingError(f"training run {run_id} still {run['status']} after {timeout_s:.0f} s; "
                                "check it later with the Models page")
        reap_dead_runs(db)
        time.sleep(poll_s)


def maybe_retrain(db_path: str | Path, *, every: int = DEFAULT_RETRAIN_EVERY, db: Database | None = None
                  ) -> int | None:
    """Start a line-model run when `every` human labels arrived since the current model; else None."""
    from labeling.session.record import labels_since_last_model

    db = db or open_db(db_path)
    if every <= 0 or labels_since_last_model(db) < every:
        return None
    if model_store.active_runs(db, "lines"):
        return None
    recent = model_store.list_runs(db, kind="lines", limit=1)
    if recent and recent[0]["status"] == "failed" and _age_s(recent[0]["finished_at"]) < FAILED_BACKOFF_S:
        return None  # don't start a worker on every key press while training keeps failing
    return request_training(db_path, kind="lines", trigger="auto")


def _last_snapshot(db: Database, department: str) -> tuple[int, int]:
    """(last rating id, last label event id) read by the department's newest complexity version."""
    rating, event = 0, 0
    for row in model_store.list_versions(db, "complexity"):
        if row["department"] == department:
            metrics = row["metrics"] if isinstance(row["metrics"], dict) else {}
            rating = max(rating, int(metrics.get("last_rating_id", 0) or 0))
            event = max(event, int(metrics.get("last_event_id", 0) or 0))
    return rating, event


def _has_version(db: Database, department: str) -> bool:
    return any(row["department"] == department for row in model_store.list_versions(db, "complexity"))


def ratings_since_last_version(db: Database, department: str) -> int:
    """Rating events (ratings and undos) in `department` since its newest complexity version was trained."""
    from store import sequences as sequence_store

    return sequence_store.ratings_since(db, department, _last_snapshot(db, department)[0])


def relabels_since_last_version(db: Database, department: str) -> int:
    """Line relabels inside rated sequences since the department's newest complexity version."""
    from store import sequences as sequence_store

    return sequence_store.relabels_in_rated_sequences(db, department, _last_snapshot(db, department)[1])


def maybe_retrain_complexity(db_path: str | Path, department: str, *, every: int = DEFAULT_RATE_RETRAIN_EVERY,
                             relabel_every: int = DEFAULT_RELABEL_RETRAIN_EVERY, db: Database | None = None,
                             models: str = "baselines") -> int | None:
    """Start a complexity run for `department` once `every` new ratings arrived since its last version,
    or `relabel_every` line labels changed the components of rated sequences (0 = never for either).

    Nothing starts while a run of that department is active, while there are too few ratings to train
    on (a run would only fail), or shortly after a failed run. Returns the run id or None.
    """
    db = db or open_db(db_path)
    by_ratings = every > 0 and ratings_since_last_version(db, department) >= every
    # relabels change the inputs of a model already trained; before the first, ratings alone start one
    by_relabels = (relabel_every > 0 and _has_version(db, department)
                   and relabels_since_last_version(db, department) >= relabel_every)
    if not (by_ratings or by_relabels):
        return None
    from models.complexity.data import TooFewRatingsError, check_ratings  # numpy: only once a run may start
    from store import sequences as sequence_store

    if [r for r in model_store.active_runs(db, "complexity") if r["department"] == department]:
        return None
    try:
        check_ratings(list(sequence_store.current_ratings(db, department=department)["value"]))
    except TooFewRatingsError:
        return None
    recent = [r for r in model_store.list_runs(db, kind="complexity", limit=20) if r["department"] == department]
    if recent and recent[0]["status"] == "failed" and _age_s(recent[0]["finished_at"]) < FAILED_BACKOFF_S:
        return None
    return request_training(db_path, kind="complexity", trigger=RATINGS_TRIGGER if by_ratings else RELABELS_TRIGGER,
                            department=department, params={"models": models})


def _after_line_run(db: Database, *, models: str = "baselines") -> None:
    """A new line model re-derives line types: departments whose rated sequences changed enough retrain."""
    from store import sequences as sequence_store
    from store.db import db_file

    path = db_file(db)
    if path is None:
        return
    for department in sequence_store.departments(db):
        try:
            maybe_retrain_complexity(path, department, every=0, db=db, models=models)
        except ScriptlabelError:
            pass  # the line run succeeded; a complexity run that cannot start is retried on the next one


def complexity_run_status(db: Database, department: str) -> dict | None:
    """The newest complexity run of a department: status, trigger, times, version, error (or None)."""
    reap_dead_runs(db)
    runs = [r for r in model_store.list_runs(db, kind="complexity", limit=50) if r["department"] == department]
    if not runs:
        return None
    run = runs[0]
    return {key: run.get(key) for key in ("run_id", "status", "trigger", "requested_at", "finished_at", "version",
                                          "error", "metrics")}


def execute_run(db: Database, run_id: int, *, auto_complexity_models: str = "baselines") -> dict:
    """Run a queued training run in this process (what the worker does) with the parameters on its row.
    Returns the finished run. `auto_complexity_models` is what complexity runs a line run triggers compare."""
    run = model_store.get_run(db, run_id)
    if not model_store.claim_run(db, run_id, pid=os.getpid()):
        return model_store.get_run(db, run_id)  # already taken (a warm worker) or finished: nothing to do
    started = time.monotonic()
    try:
        if run["kind"] == "lines":
            from labeling.training.lines import train_line_version
            from labeling.training.versions import run_params

            model_store.add_run_params(db, run_id, run_params())
            version, n_labels, metrics = train_line_version(db, predict_all=False)
            model_store.add_run_params(db, run_id, {key: metrics.get(key) for key in (
                "last_event_id", "n_labeled_lines", "n_human_labels", "scripts")})
        elif run["kind"] == "tags":
            from labeling.training.complexity import train_tags_version

            version, n_labels, metrics = train_tags_version(db, models=(run["params"] or {}).get("models") or "all")
        else:
            from labeling.training.complexity import train_complexity_version

            # Rating-triggered runs compare the fast models (plus the current version's family): seconds,
            # not minutes, on every few ratings; a run from before runs had parameters gets what it got then.
            automatic = run["trigger"] in (RATINGS_TRIGGER, RELABELS_TRIGGER)
            models = (run["params"] or {}).get("models") or ("baselines" if automatic else "all")
            version, n_labels, metrics = train_complexity_version(db, department=run["department"] or "overall",
                                                                  models=models,
                                                                  sentiment=(run["params"] or {}).get("sentiment"))
    except BaseException as exc:
        model_store.fail_run(db, run_id, error=f"{type(exc).__name__}: {exc}", duration_s=time.monotonic() - started)
        raise
    model_store.finish_run(db, run_id, version=version, n_labels=n_labels, metrics=metrics,
                           duration_s=time.monotonic() - started)
    mv = model_store.get_version(db, version)
    model_store.prune_versions(db, kind=mv.kind, department=model_store.version_department(db, version))
    if run["kind"] == "lines":
        _repredict_after(db, run_id, version)
        _after_line_run(db, models=auto_complexity_models)
    return model_store.get_run(db, run_id)


def _repredict_after(db: Database, run_id: int, version: int) -> None:
    """The rest of the library after a line run is reported done (the current script already is)."""
    from labeling.training.lines import repredict_library

    def progress(done: int, total: int) -> None:
        model_store.set_repredict_progress(db, run_id, done=done, total=total)

    result = repredict_library(db, version, progress=progress)
    model_store.set_repredict_progress(db, run_id, done=result["done"], total=result["total"])


def make_current(db: Database, version: int, *, by: str = "someone", kind: str | None = None) -> dict:
    """Roll back (or forward) to `version` and re-predict with it, so the suggestions follow.

    Line models: version 0 is the shipped base model; rolling back pins the version (retrains then add
    candidates until someone unpins it), rolling forward lifts the pin (labeling.training.versions).
    """
    if version == 0 or (kind or model_store.get_version(db, version).kind) == "lines":
        from labeling.training.lines import predict_scripts
        from labeling.training.versions import make_line_version_current

        result = make_line_version_current(db, version, by=by)
        predict_scripts(db)
        return {**result, "kind": "lines"}
    mv = model_store.set_current(db, version)
    from labeling.training.complexity import predict_sequences

    department = model_store.version_department(db, version)
    predict_sequences(db, version=version, department=department or "overall")
    return {"version": mv.version, "kind": mv.kind}
