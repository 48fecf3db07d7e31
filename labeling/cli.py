"""The `scriptlabel` command line: each command opens the database, makes one library call and
turns a library error into a one-line message on stderr with a non-zero exit."""

from __future__ import annotations

import functools
import json
import os
import sys
from pathlib import Path

import click

from store.types import ScriptlabelError


def _emit(obj) -> None:
    click.echo(json.dumps(obj, ensure_ascii=False, default=str))


# SQLite keeps ids in signed 64-bit integers: a larger id is a typo, refused before it reaches SQLite.
ID = click.IntRange(1, 2**63 - 1)


class _Annotator(click.ParamType):
    """A name to store labels under: store.types.check_annotator's rule, refused as a usage error."""

    name = "NAME"

    def convert(self, value, param, ctx):
        from store.types import BadAnnotatorError, check_annotator

        try:
            return check_annotator(value)
        except BadAnnotatorError as exc:
            self.fail(str(exc), param, ctx)


ANNOTATOR = _Annotator()


def _db_path_in_context() -> str:
    ctx = click.get_current_context(silent=True)
    return str(ctx.find_root().obj["db_path"]) if ctx and ctx.find_root().obj else "the database"


def handle_errors(func):
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        import sqlite3

        try:
            return func(*args, **kwargs)
        except BrokenPipeError:  # `scriptlabel queue | head -1`: the reader has what it wanted
            _quiet_broken_pipe()
        except ScriptlabelError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(1)
        except (sqlite3.Error, OSError) as exc:  # a full or read-only disk, a damaged database
            from store.db import explain_storage_error

            click.echo(f"error: {explain_storage_error(exc, _db_path_in_context())}", err=True)
            sys.exit(1)
        except KeyboardInterrupt:
            click.echo("error: interrupted; the database keeps everything that was finished", err=True)
            sys.exit(130)
    return wrapper


def _quiet_broken_pipe() -> None:
    """Leave quietly when standard output's reader is gone, as `cat` or `grep` do (exit status 128 + SIGPIPE).

    Standard output is pointed at /dev/null first, so Python's last flush at exit cannot complain either."""
    import signal

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    sys.exit(128 + signal.SIGPIPE)


def _cli_actor() -> str:
    """Who acts from the command line: the machine's user (the CLI runs with the database's file rights)."""
    return f"cli:{os.environ.get('USER', 'unknown')}"


def _db(ctx: click.Context, *, create: bool = True, check: bool | None = None):
    """The database; listing commands pass create=False (a mistyped --db creates nothing), writing
    commands check=True (no new rows into a database with corrupt pages)."""
    from store.db import open_db

    return open_db(ctx.obj["db_path"], create=create, check=check)


class _OneLineErrors(click.Group):
    """Usage errors (a missing argument, an id beyond 64 bits) as one `error: ...` line, like every other
    error, instead of click's usage block."""

    def main(self, *args, standalone_mode: bool = True, **kwargs):
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        try:
            return super().main(*args, standalone_mode=False, **kwargs)
        except click.UsageError as exc:
            where = exc.ctx.command_path if exc.ctx is not None else "scriptlabel"
            click.echo(f"error: {exc.format_message()} (see `{where} --help`)", err=True)
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            click.echo(f"error: {exc.format_message()}", err=True)
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("error: aborted; the database keeps everything that was finished", err=True)
            sys.exit(1)


@click.group(cls=_OneLineErrors, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--db", "db_path", type=click.Path(dir_okay=True), default=None,
              help="SQLite database (default: $SCRIPTLABEL_DB or ./scriptlabel-data/scriptlabel.db).")
@click.version_option(package_name="scriptlabel")
@click.pass_context
def cli(ctx: click.Context, db_path: str | None) -> None:
    """scriptlabel: turn screenplays into labeled data, and learn while people label."""
    from labeling.settings import Settings

    settings = Settings.from_env(os.environ, **({"db_path": Path(db_path)} if db_path else {}))
    ctx.ensure_object(dict)
    ctx.obj.update(settings=settings, db_path=settings.db_path)


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--title", default=None, help="Title to store (default: from the file).")
@click.option("--ocr", type=click.Choice(["auto", "always", "never"]), default="auto", show_default=True,
              help="OCR pages: auto = only pages without a text layer.")
@click.option("--workers", type=click.IntRange(1, 64), default=None,
              help="OCR worker processes [default: one per core].")
@click.option("--dpi", type=click.IntRange(72, 600), default=None,
              help="OCR rendering resolution [default: 200, chosen by measurement: README, Scans].")
@click.option("--duplicate", is_flag=True, help="Ingest a file again even if the same bytes were ingested before.")
@click.option("--scheduler", default=None, metavar="tcp://HOST:PORT",
              help="OCR scanned pages on this Dask cluster's workers (the database stays here).")
@click.pass_context
@handle_errors
def ingest(ctx, paths, title, ocr, workers, dpi, duplicate, scheduler):
    """Ingest screenplays (PDF, plain text, Fountain, FDX); prints one JSON line per stored file.

    Each file is stored whole or not at all; a file that fails is reported on stderr and the others
    are still stored. Exits non-zero if any file was not stored. A scanned page that gives no text
    (blank, no text found, unreadable image, timed out) is stored flagged, listed in the JSON's
    `flagged_pages` and on stderr; `scriptlabel ocr-page` reads it again. A file is refused only when
    none of its pages gives text.
    """
    from labeling.ingest.pipeline import check_title, ingest_path

    check_title(title, source="--title")
    cluster = None
    if scheduler:
        from labeling.ingest.pdf.cluster import connect

        cluster = connect(scheduler)
    try:
        db = _db(ctx, check=True)
        failed: list[str] = []
        for path in paths:
            bar = _ProgressBar(Path(path).name)
            try:
                result = ingest_path(db, path, title=title, ocr=ocr, workers=workers, dpi=dpi,
                                     allow_duplicate=duplicate, progress=bar, cluster=cluster)
            except ScriptlabelError as exc:  # storage errors included (IngestError): on to the next file
                bar.close()
                click.echo(f"error: {exc}", err=True)
                failed.append(Path(path).name)
                continue
            bar.close()
            for flagged in result.flagged_pages:
                from labeling.ingest.pipeline import FLAG_WORDS

                click.echo(f"warning: {Path(path).name}: page {flagged['page']} stored without lines "
                           f"({FLAG_WORDS.get(flagged['flag'], flagged['flag'])}: {flagged['note']}); read it again "
                           f"with `scriptlabel ocr-page {result.script_id} {flagged['page']}`", err=True)
            for page in result.low_confidence_pages:
                click.echo(f"warning: {Path(path).name}: page {page} was read by OCR with low confidence (image noise, "
                           "a photo or a poor scan?); check it on the Script page", err=True)
            from store.accounts import audit

            audit(db, _cli_actor(), "ingest", script_id=result.script_id,
                  detail={"file": Path(path).name, "via": "cli", "lines": result.lines})
            _emit({**result.as_json(), "file": str(path)})
    finally:
        if cluster is not None:
            cluster.close()
    if len(failed) == 1 and len(paths) == 1:
        sys.exit(1)
    if failed:
        stored = len(paths) - len(failed)
        raise ScriptlabelError(f"{len(failed)} of {len(paths)} files not stored ({', '.join(failed)}); "
                               f"{stored} stored (the JSON lines above); fix those files and ingest them again")


@cli.command("ocr-page")
@click.argument("script_id", type=ID)
@click.argument("page", type=click.IntRange(1, 100_000))
@click.option("--dpi", type=click.IntRange(72, 600), default=300, show_default=True, help="OCR rendering resolution.")
@click.option("--timeout", "timeout_s", type=click.FloatRange(1, 3600), default=240, show_default=True,
              help="Seconds the page may take.")
@click.pass_context
@handle_errors
def ocr_page(ctx, script_id, page, dpi, timeout_s):
    """Read one page of a scanned script again by OCR (a flagged page, or one read poorly); prints JSON
    {"script_id", "page", "lines", "change", "flag", "note"}. Refused for a page with lines people labeled."""
    from labeling.ingest.page_ocr import ocr_page_again
    from store.accounts import audit

    db = _db(ctx, create=False, check=True)
    result = ocr_page_again(db, script_id, page, dpi=dpi, timeout_s=timeout_s)
    audit(db, _cli_actor(), "ocr_page", script_id=script_id, detail={"page": page, "lines": result.lines})
    _emit(result.as_json())


class _ProgressBar:
    """Pages done/total on stderr (tqdm) when it is a terminal, created on the first report."""

    def __init__(self, name: str):
        self.name = name
        self.bar = None

    def __call__(self, done: int, total: int) -> None:
        if self.bar is None and not sys.stderr.isatty():
            return  # a log or a pipe gets the one-line results and messages only
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=self.name, unit="page", file=sys.stderr, leave=False,
                            mininterval=0.5)
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


@cli.command()
@click.pass_context
@handle_errors
def scripts(ctx):
    """List scripts as JSON lines: script_id, title, pages, lines, labeled."""
    from store.scripts import list_scripts

    for s in list_scripts(_db(ctx, create=False, check=False)):
        _emit({"script_id": s.script_id, "title": s.title, "pages": s.pages, "lines": s.lines,
               "labeled": s.labeled, "format": s.format, "status": s.status})


@cli.command()
@click.option("--script", "script_id", type=ID, default=None, help="Only this script.")
@click.pass_context
@handle_errors
def sequences(ctx, script_id):
    """List sequences as JSON lines."""
    from store.scripts import get_script
    from store.sequences import list_sequences

    db = _db(ctx, create=False, check=False)
    if script_id is not None:
        get_script(db, script_id)
    for s in list_sequences(db, script_id):
        _emit({"sequence_id": s.sequence_id, "script_id": s.script_id, "code": s.code, "title": s.title,
               "first_line_no": s.first_line_no, "last_line_no": s.last_line_no, "lines": s.lines})


@cli.command()
@click.option("--format", "fmt", type=click.Choice(["csv", "jsonl", "parquet", "xlsx", "fountain", "conll"]),
              required=True, help="Dataset format (sequences: csv, jsonl, parquet or xlsx). Every format keeps each "
                                  "line's text exactly as stored; xlsx is for spreadsheets (text cells, nothing "
                                  "evaluated as a formula).")
@click.option("--out", "out", type=click.Path(), required=True,
              help="File to write: a new file, or an existing one with --force (never a database, a device, a "
                   "pipe or a link).")
@click.option("--force", is_flag=True, help="Replace the file at --out if it exists.")
@click.option("--what", type=click.Choice(["lines", "sequences"]), default="lines", show_default=True,
              help="lines = one row per line; sequences = one row per sequence × department "
                   "(rating, annotator, prediction, uncertainty, tags).")
@click.option("--script", "script_id", type=ID, default=None, help="Only this script.")
@click.option("--only-human", is_flag=True, help="Only lines a person labeled (sequences: only rated rows).")
@click.option("--scheme", type=click.Choice(["project", "full", "seed"]), default="project", show_default=True,
              help="project = the project's classes (`scheme show`); full = 7 built-in labels; seed = the "
                   "study's S/C/D/O (lines only).")
@click.option("--raw-cells", is_flag=True, hidden=True,
              help="Deprecated, no effect: every export keeps the text as stored (for spreadsheets use --format xlsx).")
@click.pass_context
@handle_errors
def export(ctx, fmt, out, force, what, script_id, only_human, scheme, raw_cells):
    """Export labeled lines (or sequences) as a dataset; prints {"format", "out", "rows"}."""
    from labeling.export import ExportError, export_dataset
    from store.accounts import audit

    if raw_cells:
        click.echo("warning: --raw-cells is deprecated and has no effect: every export now keeps each text exactly "
                   "as stored (for a spreadsheet, use --format xlsx)", err=True)
    out_path = Path(out)
    # An export is checked for damaged pages first: a dataset read from a corrupt file could be silently partial.
    if what == "sequences":
        from labeling.sequences.export import export_sequences

        if scheme not in ("full", "project"):
            raise ExportError("--scheme applies to line exports; drop it with --what sequences")
        _emit(export_sequences(_db(ctx, create=False, check=True), fmt, out_path, script_id=script_id,
                               only_rated=only_human, force=force))
        return
    db = _db(ctx, create=False, check=True)
    result = export_dataset(db, fmt, out_path, script_id=script_id, only_human=only_human, scheme=scheme,
                            force=force)
    audit(db, _cli_actor(), "export", script_id=script_id,
          detail={"format": fmt, "rows": result["rows"], "via": "cli"})
    _emit(result)


@cli.command("import")
@click.argument("path", type=click.Path())
@click.option("--annotator", type=ANNOTATOR, default="import", show_default=True,
              help="Annotator for rows that name none (e.g. a file without an annotator column).")
@click.pass_context
@handle_errors
def import_(ctx, path, annotator):
    """Import human labels (CSV/JSONL/Parquet export columns line_id, label, annotator; or script_title +
    line_no; or Prodigy JSONL): every row checked first, then all written or none. Prints one JSON report."""
    from labeling.ingest.imports import import_labels

    max_bytes = ctx.obj["settings"].max_upload_mb * 1024 * 1024  # SCRIPTLABEL_MAX_UPLOAD_MB, as for uploads
    _emit(import_labels(_db(ctx, create=False), path, default_annotator=annotator, max_bytes=max_bytes).as_json())


@cli.command()
@click.argument("line_id", type=ID)
@click.argument("label")
@click.option("--annotator", type=ANNOTATOR, default=lambda: os.environ.get("USER", "cli"), help="Who labels (default: $USER).")
@click.pass_context
@handle_errors
def label(ctx, line_id, label, annotator):
    """Record a human label for a line (what the app does on a key press: every
    SCRIPTLABEL_RETRAIN_EVERY human labels start a background retrain, whose run id is printed)."""
    from labeling.session.record import record_label
    from labeling.training.runs import maybe_retrain

    db = _db(ctx, create=False, check=True)
    stored = record_label(db, line_id, label, annotator=annotator)
    run_id = maybe_retrain(Path(ctx.obj["db_path"]).resolve(), every=ctx.obj["settings"].retrain_every, db=db)
    _emit({**stored, "retrain_run": run_id})


@cli.command()
@click.argument("sequence_id", type=ID)
@click.argument("value", type=int)
@click.option("--department", default="overall", show_default=True, help="overall, animation, fx, lighting, …")
@click.option("--annotator", type=ANNOTATOR, default=lambda: os.environ.get("USER", "cli"), help="Who rates (default: $USER).")
@click.pass_context
@handle_errors
def rate(ctx, sequence_id, value, department, annotator):
    """Record a human complexity rating (1–5) for a sequence (as the Sequences page does: every
    SCRIPTLABEL_RATE_RETRAIN_EVERY new ratings of a department start its background retrain)."""
    from labeling.training.runs import maybe_retrain_complexity
    from store.sequences import add_rating

    db = _db(ctx, create=False, check=True)
    rating_id = add_rating(db, sequence_id, value, department=department, annotator=annotator)
    settings = ctx.obj["settings"]
    run_id = maybe_retrain_complexity(Path(ctx.obj["db_path"]).resolve(), department,
                                      every=settings.rate_retrain_every, db=db,
                                      models=settings.auto_complexity_models)
    _emit({"rating_id": rating_id, "sequence_id": sequence_id, "department": department, "value": value,
           "retrain_run": run_id})


@cli.command()
@click.argument("sequence_id", type=ID)
@click.argument("tags", nargs=-1, required=True)
@click.option("--absent", is_flag=True, help="Record that these tags are NOT in the sequence.")
@click.option("--annotator", type=ANNOTATOR, default=lambda: os.environ.get("USER", "cli"), help="Who tags (default: $USER).")
@click.pass_context
@handle_errors
def tag(ctx, sequence_id, tags, absent, annotator):
    """Record breakdown tags of a sequence (crowd, water, fire, vehicles, creatures, …)."""
    from store.sequences import set_tags

    set_tags(_db(ctx, create=False, check=True), sequence_id, list(tags), present=not absent, annotator=annotator)
    _emit({"sequence_id": sequence_id, "tags": list(tags), "present": not absent})


@cli.command()
@click.option("--port", type=click.IntRange(1, 65535), default=8501, show_default=True, help="Port to listen on.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (loopback by default: only this machine can open the app).")
@click.option("--sample/--no-sample", default=True, show_default=True,
              help="Ingest the bundled sample screenplay on first start.")
@click.pass_context
@handle_errors
def serve(ctx, port, host, sample):
    """Start the app (Streamlit and the labeling view's routes) on this database.

    Loopback (127.0.0.1) by default; a network address only when sign-in is configured (an account
    from `scriptlabel users add`, or [auth] in .streamlit/secrets.toml)."""
    from labeling.processes import run_forwarding_signals

    from labeling.accounts.access import check_serve_host

    check_serve_host(_db(ctx), host)
    app = Path(__file__).resolve().parents[1] / "app_server.py"
    env = dict(os.environ, SCRIPTLABEL_DB=str(Path(ctx.obj["db_path"]).resolve()),
               SCRIPTLABEL_SAMPLE="1" if sample else "0")  # the app's server builds its settings from these
    max_upload_mb = ctx.obj["settings"].max_upload_mb  # SCRIPTLABEL_MAX_UPLOAD_MB, also checked on ingest
    raise SystemExit(run_forwarding_signals(
        [sys.executable, "-m", "streamlit", "run", str(app), "--server.port", str(port), "--server.address", host,
         "--server.headless", "true", "--browser.gatherUsageStats", "false", "--client.toolbarMode", "viewer",
         "--client.showErrorDetails", "none", "--server.maxUploadSize", str(max_upload_mb)], env=env))


@cli.command()
@click.option("--script", "script_id", type=ID, default=None, help="Only this script (default: every script).")
@click.option("--scheduler", default=None, metavar="tcp://HOST:PORT",
              help="Run the model on this Dask cluster's workers (the database stays here).")
@click.pass_context
@handle_errors
def predict(ctx, script_id, scheduler):
    """Suggest a label for every line with the current line model; prints counts per script."""
    from labeling.training.lines import predict_scripts, predict_scripts_on_cluster

    db = _db(ctx, create=False)
    if scheduler:
        from labeling.ingest.pdf.cluster import connect

        with connect(scheduler) as client:
            for row in predict_scripts_on_cluster(db, client, script_id=script_id):
                _emit(row)
        return
    for row in predict_scripts(db, script_id=script_id):
        _emit(row)


@cli.command()
@click.option("--script", "script_id", type=ID, default=None, help="Only this script.")
@click.option("--n", "n", type=click.IntRange(1, 100000), default=20, show_default=True, help="How many items.")
@click.option("--strategy", type=click.Choice(["diverse", "margin", "entropy", "least_confidence", "random", "review"]),
              default="diverse", show_default=True,
              help="How to rank unlabeled lines; diverse = the most uncertain line of each kind, lines of patterns people already labeled later; review = people's labels the model confidently contradicts.")
@click.option("--random-share", type=click.FloatRange(0, 1), default=0.1, show_default=True,
              help="Share of items drawn at random (keeps labels usable for unbiased evaluation).")
@click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=None, help="Random seed (for reproducible queues).")
@click.option("--annotator", type=ANNOTATOR, default=None,
              help="This person's queue: their assigned work first, overlap lines others labeled that NAME has "
                   "not, then new lines; never a line NAME already labeled.")
@click.pass_context
@handle_errors
def queue(ctx, script_id, n, strategy, random_share, seed, annotator):
    """The most useful lines to label next, as JSON lines {line_id, text, suggestion, confidence}."""
    from labeling.session.queue import build_queue
    from store.scripts import get_script

    db = _db(ctx, create=False, check=False)
    if script_id is not None:
        get_script(db, script_id)
    if strategy == "review":
        from labeling.session.review import review_candidates

        candidates = review_candidates(db, script_id)
        if not candidates:
            from labeling.session.strategies import EmptyPoolError

            raise EmptyPoolError("no label is confidently contradicted by the model (or every such label was "
                                 "reviewed): nothing to review")
        for candidate in candidates[:n]:
            _emit({**candidate.as_queue_item().as_json(), "label": candidate.given,
                   "score": round(candidate.score, 4)})
        return
    for item in build_queue(db, script_id=script_id, strategy=strategy, n=n, random_share=random_share, seed=seed,
                            annotator=annotator, tab="cli"):
        _emit(item.as_json())


def _train_params(kind: str, model_set: str, sentiment: str | None) -> dict | None:
    if kind not in ("complexity", "tags"):
        return None
    return {"models": model_set, **({"sentiment": sentiment} if sentiment and kind == "complexity" else {})}


@cli.command()
@click.argument("share", type=click.FloatRange(0, 1))
@click.option("--annotators", type=click.IntRange(2, 10), default=2, show_default=True,
              help="How many different people label each overlap line.")
@click.option("--scripts", "whole_scripts", is_flag=True,
              help="Overlap whole scripts (this share of the scripts, every line of each) instead of lines.")
@click.pass_context
@handle_errors
def overlap(ctx, share, annotators, whole_scripts):
    """Set the share (0-1) of lines that N people label on their own (0 turns overlap off); prints
    {"share", "annotators", "scope", "lines_in_overlap", "lines"}."""
    from labeling.accounts import access
    from labeling.team.overlap import overlap_summary, set_overlap

    db = _db(ctx, check=True)
    setting = set_overlap(db, access.single_user(_cli_actor()), share=share, annotators=annotators,
                          scope="scripts" if whole_scripts else "lines")
    _emit({**setting.as_json(), **overlap_summary(db, setting)})


@cli.command()
@click.option("--script", "script_id", type=ID, default=None, help="Only this script.")
@click.pass_context
@handle_errors
def agreement(ctx, script_id):
    """Agreement on lines several people labeled: {"lines_overlapped", "pairs": [{"a", "b", "n", "kappa",
    "agreement", "ci95"}], "per_class": {LABEL: {"n", "kappa", "ci95"}}, "alpha", "per_script", "over_time",
    "versus_adjudicated", "ratings", ...}; κ by scikit-learn, α by krippendorff, 95% bootstrap intervals."""
    from labeling.team.agreement import line_agreement
    from store.scripts import get_script

    db = _db(ctx, create=False, check=False)
    if script_id is not None:
        get_script(db, script_id)
    _emit(line_agreement(db, script_id).as_json())


@cli.command()
@click.option("--target", type=click.Choice(["lines", "complexity", "tags", "all"]), default="lines",
              show_default=True, help="Which model to retrain (tags = multi-label breakdown tags of sequences).")
@click.option("--department", default="overall", show_default=True, help="Complexity department to train.")
@click.option("--wait/--no-wait", default=False, help="Block until training is done and print its metrics.")
@click.option("--timeout", type=click.FloatRange(1, 7 * 86400), default=1800, show_default=True,
              help="Seconds to wait with --wait.")
@click.option("--models", "model_set", type=click.Choice(["all", "baselines"]), default="all", show_default=True,
              help="Complexity: compare the BiLSTMs too (minutes) or only the fast baselines (seconds).")
@click.option("--sentiment", type=click.Choice(["both", "with", "without"]), default=None,
              help="Complexity: compare the models with and without the sentiment/affect feature block "
                   "(both, the default), only with it, or only without.")
@click.pass_context
@handle_errors
def train(ctx, target, department, wait, timeout, model_set, sentiment):
    """Retrain in a background worker; prints the run (and with --wait the new version and its metrics)."""
    import functools
    import time

    from labeling.training.runs import request_training, wait_for_run
    from store import labels as label_store
    from store.db import open_db

    _db(ctx, create=False)
    kinds = ["lines", "complexity"] if target == "all" else [target]
    for kind in kinds:
        if kind == "complexity":
            from store.sequences import departments

            if department not in departments(_db(ctx)):
                raise ScriptlabelError(f"unknown department {department!r}: use one of "
                                       f"{', '.join(departments(_db(ctx)))}")
        request = functools.partial(request_training, Path(ctx.obj["db_path"]).resolve(), kind=kind, trigger="cli",
                                    department=department if kind == "complexity" else None,
                                    params=_train_params(kind, model_set, sentiment))
        given = label_store.max_event_id(_db(ctx)) if kind == "lines" else 0
        run_id = request()
        if not wait:
            _emit({"run_id": run_id, "target": kind, "status": "queued"})
            continue
        deadline = time.monotonic() + timeout
        run = wait_for_run(open_db(ctx.obj["db_path"]), run_id, timeout_s=timeout)
        metrics = run["metrics"] or {}
        if kind == "lines" and run["status"] == "done" and int(metrics.get("last_event_id", given)) < given:
            # The run handed back was one the labels had already started (every N labels) on an older
            # snapshot: train once more, so the model printed has every label given before this command.
            run_id = request()
            run = wait_for_run(open_db(ctx.obj["db_path"]), run_id, timeout_s=max(1.0, deadline - time.monotonic()))
            metrics = run["metrics"] or {}
        _emit({"version": run["version"], "target": kind, "run_id": run_id, "status": run["status"],
               "duration_s": round(run["duration_s"] or 0, 3), "n_labels": run["n_labels"], **metrics})


@cli.command()
@click.option("--script", "script_id", type=ID, default=None, help="Accept suggestions on this script.")
@click.option("--page", type=ID, default=None, help="Only this page of the script.")
@click.option("--above", type=click.FloatRange(0, 1, min_open=True), default=None,
              help="Accept suggestions whose probability is at least this, e.g. 0.99.")
@click.option("--dry-run", is_flag=True, help="Only say how many lines and how many expected errors.")
@click.option("--version", "version_seen", type=click.IntRange(0, 2**63 - 1), default=None,
              help="The model version the dry run showed: refused if another one is current now "
                   "(default: the current one).")
@click.option("--batch", "batch_id", default=None, help="Id for this batch (default: a new one); sending the same "
              "id again stores nothing twice.")
@click.option("--undo", "undo_batch", default=None, metavar="BATCH_ID", help="Take a whole batch back.")
@click.option("--list", "list_batches", is_flag=True, help="List the newest batches as JSON lines.")
@click.option("--annotator", type=ANNOTATOR, default=lambda: os.environ.get("USER", "cli"), help="Who accepts (default: $USER).")
@click.pass_context
@handle_errors
def accept(ctx, script_id, page, above, dry_run, version_seen, batch_id, undo_batch, list_batches, annotator):
    """Accept every suggestion at or above a probability on a script (or one page) as one batch.

    Prints {"lines", "expected_errors" (the sum of 1 - p), "model_version", "batch_id", ...}. Accepted
    lines keep label_source "accepted" (never a person's label) and leave the label queue; `--undo
    BATCH_ID` takes the whole batch back.
    """
    from labeling.accounts import access
    from labeling.session import bulk_accept
    from store import labels as label_store

    who = access.single_user(annotator)  # the CLI runs with the database's file rights
    if list_batches:
        for batch in label_store.accept_batches(_db(ctx, create=False, check=False), script_id):
            _emit(batch.as_json())
        return
    if undo_batch is not None:
        if script_id is not None or above is not None:
            raise ScriptlabelError("--undo takes only the batch id; drop --script/--above")
        _emit(bulk_accept.undo(_db(ctx, create=False, check=True), who, undo_batch, via="cli").as_json())
        return
    if script_id is None or above is None:
        raise ScriptlabelError("give --script ID and --above P (e.g. --above 0.99), or --undo BATCH_ID")
    db = _db(ctx, create=False, check=True)
    preview = bulk_accept.preview(db, script_id, above=above, page=page)
    if dry_run:
        _emit({**preview.as_json(), "dry_run": True})
        return
    batch = bulk_accept.accept(
        db, who, script_id, above=above, page=page, batch_id=batch_id or label_store.new_batch_id(), via="cli",
        model_version_seen=preview.model_version if version_seen is None else version_seen)
    _emit(batch.as_json())


@cli.command()
@click.pass_context
@handle_errors
def versions(ctx):
    """Line-model versions as JSON lines, newest first, version 0 (the shipped model) last: status
    (current, candidate, previous), pinned, accuracy of its suggestions on the labels people gave
    (n, Wilson 95% interval), and why it is or is not current."""
    from labeling.training.versions import line_versions

    for row in line_versions(_db(ctx, create=False, check=False)):
        _emit(row)


@cli.command()
@click.argument("version", type=click.IntRange(0, 2**63 - 1))
@click.pass_context
@handle_errors
def rollback(ctx, version):
    """Make a line-model version current (0 = the shipped model) and re-predict. Rolling back pins it:
    retrains then add candidates until `scriptlabel unpin`."""
    from labeling.training.runs import make_current
    from store.accounts import audit

    db = _db(ctx, create=False, check=True)
    result = make_current(db, version, by=_cli_actor(), kind="lines")
    audit(db, _cli_actor(), "rollback", detail={"version": version, "via": "cli", "pinned": result["pinned"]})
    _emit(result)


@cli.command()
@click.pass_context
@handle_errors
def unpin(ctx):
    """Lift the pin on the current line model: the next retrain may replace it again."""
    from store.models import unpin_current

    pin = unpin_current(_db(ctx, create=False, check=True), kind="lines")
    _emit({"unpinned": None if pin is None else pin["version"]})


@cli.command()
@click.option("--folds", type=click.IntRange(2, 20), default=5, show_default=True,
              help="Grouped folds (split by script, never by line).")
@click.pass_context
@handle_errors
def evaluate(ctx, folds):
    """Held-out metrics of the line model on this database's labels (split by script)."""
    from labeling.training.lines import evaluate_lines

    _emit(evaluate_lines(_db(ctx, create=False, check=False), folds=folds))


@cli.command()
@click.argument("line_id", type=ID)
@click.option("--confirm", "confirm", is_flag=True, help="Keep the line's current label.")
@click.option("--fix", "fix", default=None, help="Replace the label with this one.")
@click.option("--annotator", type=ANNOTATOR, default=lambda: os.environ.get("USER", "cli"), help="Who reviews (default: $USER).")
@click.pass_context
@handle_errors
def review(ctx, line_id, confirm, fix, annotator):
    """Record a review decision on a label from `queue --strategy review`: --confirm or --fix LABEL."""
    from labeling.session.review import confirm_label, fix_label

    if confirm == (fix is not None):
        raise ScriptlabelError("give exactly one of --confirm or --fix LABEL")
    db = _db(ctx, create=False)
    _emit(confirm_label(db, line_id, annotator=annotator) if confirm else
          fix_label(db, line_id, fix, annotator=annotator))


@cli.command()
@click.argument("sequence_id", type=ID)
@click.option("--n", "n", type=click.IntRange(1, 1000), default=5, show_default=True, help="How many neighbours.")
@click.pass_context
@handle_errors
def similar(ctx, sequence_id, n):
    """Sequences most like this one (tf-idf + SVD over their components), as JSON lines
    {sequence_id, score, code, title, script_id}; never the sequence itself."""
    from labeling.session.similar import similar_sequences

    for hit in similar_sequences(_db(ctx, create=False), sequence_id, n=n):
        _emit(hit.as_json())


@cli.group()
def users():
    """Local accounts for sign-in: add, list, remove, passwd (with any account, the app asks for sign-in)."""


def _read_password() -> str:
    password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise ScriptlabelError("no password on standard input: pipe one in, e.g. "
                               "echo \"$PW\" | scriptlabel users add NAME --role annotator --password-stdin")
    if len(password) < 8:
        raise ScriptlabelError("the password is shorter than 8 characters: choose a longer one")
    return password


@users.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(["annotator", "lead", "admin"]), required=True,
              help="annotator: label, rate, tag, flag; lead: + adjudicate, train, roll back, export; "
                   "admin: + ingest, delete, users.")
@click.option("--password-stdin", is_flag=True,
              help="Read the password from the first line of standard input. Without it, NAME must be an "
                   "email that signs in through OpenID Connect ([auth] in .streamlit/secrets.toml).")
@click.pass_context
@handle_errors
def users_add(ctx, name, role, password_stdin):
    """Add an account; prints {"name", "role", "password"}."""
    from store.accounts import add_user, audit

    db = _db(ctx)
    user = add_user(db, name, role=role, password=_read_password() if password_stdin else None)
    audit(db, _cli_actor(), "user_add", detail={"name": user.name, "role": user.role})
    _emit({"name": user.name, "role": user.role, "password": user.has_password})


@users.command("list")
@click.pass_context
@handle_errors
def users_list(ctx):
    """List accounts as JSON lines {"name", "role", "password", "created_at"} (never a hash)."""
    from store.accounts import list_users

    for user in list_users(_db(ctx)):
        _emit({"name": user.name, "role": user.role, "password": user.has_password, "created_at": user.created_at})


@users.command("remove")
@click.argument("name")
@click.pass_context
@handle_errors
def users_remove(ctx, name):
    """Remove an account and end its sessions (its labels keep its name)."""
    from store.accounts import audit, remove_user

    db = _db(ctx, create=False)
    remove_user(db, name)
    audit(db, _cli_actor(), "user_remove", detail={"name": name})
    _emit({"name": name, "removed": True})


@users.command("passwd")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, required=True,
              help="Read the new password from the first line of standard input.")
@click.pass_context
@handle_errors
def users_passwd(ctx, name, password_stdin):
    """Set a new password; the person's open sessions end."""
    from store.accounts import audit, set_password

    db = _db(ctx, create=False)
    set_password(db, name, _read_password())
    audit(db, _cli_actor(), "user_passwd", detail={"name": name})
    _emit({"name": name, "password": True})


@cli.command()
@click.argument("script_id", type=ID)
@click.argument("names", nargs=-1)
@click.option("--everyone", is_flag=True, help="Lift the restriction: every signed-in person sees the script.")
@click.pass_context
@handle_errors
def restrict(ctx, script_id, names, everyone):
    """Let only the named people (and admins) see a script: its title, lines and exports."""
    from store.accounts import audit, restrict_script, script_access, unrestrict_script
    from store.scripts import get_script

    db = _db(ctx, create=False)
    get_script(db, script_id)
    if everyone and names:
        raise ScriptlabelError(f"--everyone lifts the restriction, names ({', '.join(names)}) set one: give either "
                               "the names or --everyone")
    if everyone:
        unrestrict_script(db, script_id)
    elif not names:
        raise ScriptlabelError("name the people who may see the script, or give --everyone")
    else:
        restrict_script(db, script_id, list(names))
    audit(db, _cli_actor(), "restrict", script_id=script_id, detail={"names": list(names), "everyone": everyone})
    _emit({"script_id": script_id, "names": script_access(db).get(script_id, [])})


# The scheme and rule groups live beside this file (labeling/cli_scheme.py), registered with its helpers.
from types import SimpleNamespace  # noqa: E402

from labeling.cli_scheme import register as _register_scheme  # noqa: E402

_register_scheme(cli, SimpleNamespace(ID=ID, cli_actor=_cli_actor, db=_db, emit=_emit, handle_errors=handle_errors))


def main() -> None:
    from labeling.settings import process_defaults

    process_defaults()  # before any command imports xgboost or keras
    try:
        cli(prog_name="scriptlabel")
    except BrokenPipeError:  # raised outside a command (help text, version) into a closed pipe
        _quiet_broken_pipe()


if __name__ == "__main__":
    main()
