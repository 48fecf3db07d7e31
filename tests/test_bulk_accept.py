"""Safe bulk-accept: counts and expected errors from the stored probabilities, one batch, undo, stale versions."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import app_builders as builders
from conftest import SCREENPLAY_LINES
from store import labels as label_store
from store import models as model_store
from store import scripts as script_store
from store.types import LABELS, StaleModelError
from store.rules import rule_label


def _predict(db, script_id, confidences, *, label="action", version=None) -> int:
    """A model version whose suggestion for line i is `label` at confidences[i] (the rest spread evenly)."""
    lines = script_store.lines_frame(db, script_id)
    conf = np.resize(np.asarray(confidences, dtype=float), len(lines))
    proba = np.repeat(((1 - conf) / (len(LABELS) - 1))[:, None], len(LABELS), axis=1)
    proba[:, LABELS.index(label)] = conf
    if version is None:
        version = model_store.register_version(db, kind="lines", path="unused", metrics={}, n_labels=0)
    model_store.save_predictions(db, version, list(lines["line_id"]), proba)
    return version


CONFIDENCES = [0.999, 0.97, 0.995, 0.5, 0.9999, 0.991]


def _expected(db, script_id, above, *, page=None, skip=()):
    lines = script_store.lines_frame(db, script_id)
    conf = np.resize(np.asarray(CONFIDENCES), len(lines))
    keep = (conf >= above) & ~lines["line_id"].isin(skip).to_numpy()
    keep &= ~lines["text"].map(lambda t: rule_label(t) not in (None, "action")).to_numpy()
    if page is not None:
        keep &= (lines["page"] == page).to_numpy()
    return int(keep.sum()), float((1 - conf[keep]).sum()), set(lines.loc[keep, "line_id"])


def test_preview_counts_lines_and_expected_errors_from_the_stored_probabilities(db, pdf_script):
    version = _predict(db, pdf_script, CONFIDENCES)
    ids = list(script_store.lines_frame(db, pdf_script)["line_id"])
    label_store.add_label(db, ids[0], "scene_heading", annotator="ana")  # labeled: never accepted
    n, errors, _ = _expected(db, pdf_script, 0.99, skip=[ids[0]])
    preview = label_store.preview_accept(db, pdf_script, above=0.99)
    assert (preview.lines, preview.model_version) == (n, version) and n > 0
    assert preview.expected_errors == pytest.approx(errors)
    assert preview.skipped_rule == 3  # sure INT./EXT. headings the model calls action: a rule says otherwise
    n2, errors2, _ = _expected(db, pdf_script, 0.99, page=2)
    page = label_store.preview_accept(db, pdf_script, above=0.99, page=2)
    assert (page.lines, page.expected_errors) == (n2, pytest.approx(errors2)) and 0 < n2 < n
    with pytest.raises(label_store.NotFoundError, match="no page 9"):
        label_store.preview_accept(db, pdf_script, above=0.99, page=9)


def test_accept_is_one_batch_applied_once_and_undone_as_a_whole_once(db, pdf_script, tmp_path):
    version = _predict(db, pdf_script, CONFIDENCES)
    n, errors, accepted_ids = _expected(db, pdf_script, 0.99)
    batch = label_store.accept_suggestions(db, pdf_script, above=0.99, model_version_seen=version,
                                           batch_id="accept-test-0001", annotator="ana")
    assert (batch.status, batch.lines, batch.model_version) == ("stored", n, version)
    assert batch.expected_errors == pytest.approx(errors)
    again = label_store.accept_suggestions(db, pdf_script, above=0.99, model_version_seen=version,
                                           batch_id="accept-test-0001", annotator="ana")
    assert again.status == "duplicate" and again.lines == n
    events = db.execute("SELECT COUNT(*) FROM label_events WHERE source = 'accepted'").fetchone()[0]
    assert events == n
    effective = label_store.effective_labels(db, pdf_script).set_index("line_id")
    assert set(effective.index[effective["label_source"] == "accepted"]) == accepted_ids
    assert label_store.count_human_labels(db) == 0  # never taken for a person's label
    assert label_store.preview_accept(db, pdf_script, above=0.99).lines == 0  # nothing left to accept
    undone = label_store.undo_accept(db, "accept-test-0001", annotator="ana")
    assert undone.status == "undone" and undone.undone_at is not None
    assert label_store.undo_accept(db, "accept-test-0001", annotator="ana").status == "already_undone"
    assert db.execute("SELECT COUNT(*) FROM label_events WHERE action = 'undo'").fetchone()[0] == n
    effective = label_store.effective_labels(db, pdf_script)
    assert "accepted" not in set(effective["label_source"])
    with pytest.raises(label_store.NotFoundError, match="no bulk-accept batch"):
        label_store.undo_accept(db, "accept-nope-0001", annotator="ana")


def test_a_changed_model_version_or_stale_suggestions_refuse_the_accept(db, pdf_script):
    v1 = _predict(db, pdf_script, CONFIDENCES)
    v2 = _predict(db, pdf_script, CONFIDENCES)
    with pytest.raises(StaleModelError, match=f"came from model v{v1}, but v{v2} is current"):
        label_store.accept_suggestions(db, pdf_script, above=0.99, model_version_seen=v1,
                                       batch_id="accept-stale-001", annotator="ana")
    assert db.execute("SELECT COUNT(*) FROM accept_batches").fetchone()[0] == 0
    model_store.register_version(db, kind="lines", path="unused", metrics={}, n_labels=0)  # not re-predicted yet
    with pytest.raises(StaleModelError, match=f"come from model v{v2}"):
        label_store.preview_accept(db, pdf_script, above=0.99)


def test_effective_label_rule_human_over_accepted_over_rule_and_model_and_the_queue(db, pdf_script):
    from labeling.session.queue import build_queue
    from labeling.session.strategies import EmptyPoolError

    version = _predict(db, pdf_script, [0.999])
    lines = script_store.lines_frame(db, pdf_script)
    heading = int(lines.loc[lines["text"].str.startswith("INT."), "line_id"].iloc[0])
    label_store.add_label(db, heading, "action", annotator="imp", source="imported")
    batch = label_store.accept_suggestions(db, pdf_script, above=0.99, model_version_seen=version,
                                           batch_id="accept-rule-0001", annotator="ana")
    effective = label_store.effective_labels(db, pdf_script).set_index("line_id")
    assert effective.loc[heading, "label_source"] == "imported"  # imported beats accepted
    other = [int(i) for i in lines["line_id"] if rule_label(lines.set_index("line_id").loc[i, "text"]) is None]
    label_store.add_label(db, other[0], "dialogue", annotator="bob")
    effective = label_store.effective_labels(db, pdf_script).set_index("line_id")
    assert (effective.loc[other[0], "label"], effective.loc[other[0], "label_source"]) == ("dialogue", "human")
    assert (effective.loc[other[1], "label"], effective.loc[other[1], "label_source"]) == ("action", "accepted")
    assert batch.lines == len(lines) - 1 - 3  # not the imported heading, nor the 3 headings a rule labels
    headings = set(lines.loc[lines["text"].map(rule_label).notna(), "line_id"]) - {heading}
    with pytest.raises(EmptyPoolError):  # accepted lines left the label queue; headings a rule labels never join it
        build_queue(db, script_id=pdf_script, n=50, random_share=0.0)
    assert label_store.labels_of_lines(db, [other[1]])[other[1]]["source"] == "accepted"  # a tab drops them
    label_store.undo_accept(db, "accept-rule-0001", annotator="ana")
    queued = {i for item in build_queue(db, script_id=pdf_script, n=50, random_share=0.0) for i in item.group_line_ids}
    assert queued == set(lines["line_id"]) - {heading, other[0]} - headings


def test_exports_say_accepted_and_imports_refuse_accepted_rows(db, pdf_script, tmp_path):
    from labeling.export import export_dataset
    from labeling.ingest.imports import import_labels

    version = _predict(db, pdf_script, [0.999])
    batch = label_store.accept_suggestions(db, pdf_script, above=0.99, model_version_seen=version,
                                           batch_id="accept-exp-0001", annotator="ana")
    out = tmp_path / "labels.csv"
    export_dataset(db, "csv", out)
    frame = pd.read_csv(out)
    assert (frame["label_source"] == "accepted").sum() == batch.lines
    assert set(frame.loc[frame["label_source"] == "accepted", "annotator"]) == {"ana"}
    human = tmp_path / "human.csv"
    assert export_dataset(db, "csv", human, only_human=True)["rows"] == 0
    report = import_labels(db, out).as_json()
    assert report["imported"] == 0 and report["rejected"] >= batch.lines


def test_the_review_queue_checks_accepted_labels_but_never_fits_on_them(db, pdf_script, tmp_path):
    from labeling.session.review import _with_accepted
    from labeling.training.lines import labeled_snapshot

    other = builders.text_script(db, tmp_path)
    version = _predict(db, pdf_script, [0.999])
    _predict(db, other, [0.5], version=version)
    ids = list(script_store.lines_frame(db, other)["line_id"])
    label_store.add_label(db, ids[0], "scene_heading", annotator="ana")
    label_store.accept_suggestions(db, pdf_script, above=0.99, model_version_seen=version,
                                   batch_id="accept-rev-0001", annotator="ana")
    frame, y_fit, _ = labeled_snapshot(db)
    frame, y_fit, checked = _with_accepted(db, frame, y_fit)
    accepted = set(label_store.effective_labels(db, pdf_script).query("label_source == 'accepted'")["line_id"])
    by_line = dict(zip(frame["line_id"], checked))
    assert accepted and all(by_line[i] == "action" for i in accepted)
    fitted = {i for i, v in zip(frame["line_id"], y_fit) if isinstance(v, str)}
    assert fitted == {ids[0]}


def test_cli_accept_dry_run_accept_undo_and_clear_errors(cli, db, pdf_script):
    version = _predict(db, pdf_script, CONFIDENCES)
    n, errors, _ = _expected(db, pdf_script, 0.99, page=1)
    [dry] = cli.json_lines("accept", "--script", str(pdf_script), "--page", "1", "--above", "0.99", "--dry-run")
    assert (dry["lines"], dry["model_version"], dry["dry_run"]) == (n, version, True)
    assert dry["expected_errors"] == pytest.approx(errors, abs=1e-3)
    assert db.execute("SELECT COUNT(*) FROM label_events").fetchone()[0] == 0
    [done] = cli.json_lines("accept", "--script", str(pdf_script), "--page", "1", "--above", "0.99",
                            "--version", str(version), "--batch", "cli-batch-0001")
    assert (done["status"], done["lines"], done["batch_id"], done["page"]) == ("stored", n, "cli-batch-0001", 1)
    [again] = cli.json_lines("accept", "--script", str(pdf_script), "--page", "1", "--above", "0.99",
                             "--batch", "cli-batch-0001")
    assert again["status"] == "duplicate"
    assert [b["batch_id"] for b in cli.json_lines("accept", "--list")] == ["cli-batch-0001"]
    audited = [json.loads(r[0]) for r in db.execute("SELECT detail FROM audit_log WHERE action = 'bulk_accept'")]
    assert [(a["batch_id"], a["lines"]) for a in audited] == [("cli-batch-0001", n)]
    assert cli.json_lines("accept", "--undo", "cli-batch-0001")[0]["status"] == "undone"
    assert cli.json_lines("accept", "--undo", "cli-batch-0001")[0]["status"] == "already_undone"
    stale = cli("accept", "--script", str(pdf_script), "--above", "0.99", "--version", str(version + 7))
    assert stale.exit_code == 1 and stale.stderr.startswith("error: the suggestions you saw came from model v")
    assert len(stale.stderr.strip().splitlines()) == 1
    for args, message in [(["--script", str(pdf_script)], "give --script ID and --above P"),
                          (["--script", "999", "--above", "0.9"], "999"),
                          (["--undo", "nope-nope-1"], "no bulk-accept batch"),
                          (["--script", str(pdf_script), "--above", "1.5"], "--above")]:
        result = cli("accept", *args)
        assert result.exit_code != 0 and message in result.stderr and "Traceback" not in result.stderr, args


def test_wrong_accepted_suggestions_surface_in_the_review_queue(db, pdf_script):
    """A (made-up) model right on page 1 but calling page 2's dialogue action was bulk-accepted; the
    review queue — fitted on people's labels only, over the shipped model — flags those lines, no other."""
    from labeling.session.review import review_candidates

    lines = script_store.lines_frame(db, pdf_script)
    truth = np.resize([label for _, _, label in SCREENPLAY_LINES], len(lines))
    wrong = (lines["page"] == 2).to_numpy() & (truth == "dialogue")
    suggested = np.where(wrong, "action", truth)
    proba = np.full((len(lines), len(LABELS)), 0.001 / (len(LABELS) - 1))
    proba[np.arange(len(lines)), [LABELS.index(s) for s in suggested]] = 0.999
    version = model_store.register_version(db, kind="lines", path="unused", metrics={}, n_labels=0)
    model_store.save_predictions(db, version, list(lines["line_id"]), proba)
    label_store.accept_suggestions(db, pdf_script, above=0.99, model_version_seen=version,
                                   batch_id="accept-review-01", annotator="ana")
    flagged = {c.line_id: c for c in review_candidates(db, pdf_script)}
    assert flagged and set(flagged) <= set(lines.loc[wrong, "line_id"])  # here 1 of the 2, never a right one
    assert all((c.given, c.suggested) == ("action", "dialogue") for c in flagged.values())
