"""Label-error review: out-of-fold confident learning over people's labels, outcomes recorded."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import SCREENPLAY_LINES, make_text_pdf
from labeling.ingest.pipeline import ingest_path
from labeling.session.queue import QueueItem
from labeling.session.review import (
    class_thresholds, confident_errors, confirm_label, fix_label, fold_groups, rank, review_queue, sure_hint,
)
from labeling.session.strategies import EmptyPoolError
from store import labels as label_store
from store import review as review_store
from store import scripts as script_store


def test_confident_errors_flags_what_another_class_claims():
    proba = np.array([[0.9, 0.1], [0.8, 0.2], [0.1, 0.9], [0.95, 0.05], [0.3, 0.7]])
    given = np.array([0, 0, 1, 1, 0])  # row 3 is labeled 1 but looks like 0; row 4 labeled 0 looks like 1
    assert np.allclose(class_thresholds(proba, given), [(0.9 + 0.8 + 0.3) / 3, (0.9 + 0.05) / 2])
    flagged, suggested, score = confident_errors(proba, given)
    assert list(flagged) == [False, False, False, True, True]
    assert list(suggested[[3, 4]]) == [0, 1]
    assert list(rank(flagged, score)) == [3, 4]  # 1 − 0.05 before 1 − 0.3


def test_fold_groups_split_one_script_into_blocks():
    assert set(fold_groups(np.array([1, 1, 2]), np.array([1, 2, 1]))) == {1, 2}
    blocks = fold_groups(np.ones(10, dtype=int), np.arange(10, 0, -1))
    assert list(blocks) == [4, 4, 3, 3, 2, 2, 1, 1, 0, 0]


def test_sure_hint():
    assert sure_hint("action", "dialogue", 0.99) and "99%" in sure_hint("action", "dialogue", 0.99)
    assert sure_hint("dialogue", "dialogue", 0.99) is None and sure_hint("action", "dialogue", 0.6) is None


@pytest.fixture
def labeled(db, tmp_path):
    """Two PDF scripts labeled by a person, one heading per script mislabeled as dialogue."""
    flipped = []
    pdf = make_text_pdf(tmp_path / "lighthouse.pdf", pages=2)
    for _ in range(2):
        script_id = ingest_path(db, pdf, allow_duplicate=True).script_id
        lines = script_store.lines_frame(db, script_id)
        truth = [label for _, _, label in SCREENPLAY_LINES] * 2
        assert len(lines) == len(truth)
        for line_id, label in zip(lines["line_id"], truth):
            label_store.add_label(db, int(line_id), label, annotator="ana")
        wrong = int(lines["line_id"].iloc[8])  # EXT. LIGHTHOUSE - CONTINUOUS
        label_store.add_label(db, wrong, "dialogue", annotator="ana")
        flipped.append(wrong)
    return flipped


def test_review_queue_puts_contradicted_labels_first(db, labeled, cli):
    items = review_queue(db, n=5)
    assert all(isinstance(item, QueueItem) for item in items)
    assert {items[0].line_id, items[1].line_id} == set(labeled)
    assert items[0].suggestion == "scene_heading" and items[0].confidence > 0.5
    rows = cli.json_lines("queue", "--strategy", "review", "--n", "2")
    assert {r["line_id"] for r in rows} == set(labeled)
    assert rows[0]["label"] == "dialogue" and rows[0]["suggestion"] == "scene_heading"


def test_review_outcomes_take_lines_out_of_the_queue(db, labeled, cli):
    first, second = labeled
    fix_label(db, first, "scene_heading", annotator="rev", suggested="scene_heading")
    [outcome] = cli.json_lines("review", str(second), "--confirm", "--annotator", "rev")
    assert outcome == {"line_id": second, "outcome": "confirmed", "label": "dialogue"}
    history = review_store.review_history(db)
    assert [(h["line_id"], h["outcome"], h["label"], h["previous_label"]) for h in history] == [
        (first, "fixed", "scene_heading", "dialogue"), (second, "confirmed", "dialogue", "dialogue")]
    assert label_store.current_labels(db).set_index("line_id").loc[first, "label"] == "scene_heading"
    try:
        remaining = {item.line_id for item in review_queue(db, n=50)}
    except EmptyPoolError:
        remaining = set()
    assert not remaining & {first, second}
    label_store.add_label(db, second, "action", annotator="ana")  # a new label is open to review again
    bad = cli("review", str(second))
    assert bad.exit_code == 1 and "--confirm or --fix" in bad.stderr


def test_review_with_nothing_labeled(db, pdf_script, cli):
    with pytest.raises(EmptyPoolError):
        review_queue(db)
    result = cli("queue", "--strategy", "review")
    assert result.exit_code == 1 and "nothing to review" in result.stderr
    with pytest.raises(Exception, match="no label to confirm"):
        confirm_label(db, int(script_store.lines_frame(db, pdf_script)["line_id"].iloc[0]), annotator="rev")


def test_the_label_view_reviews_by_key_confirm_or_fix_once(db, labeled):
    import uuid

    from labeling.session import sync as label_sync

    request = dict(annotator="rev", tab="tab-review-1", strategy="review")
    first = label_sync.sync(db, label_sync.SyncRequest.parse({**request, "want": 10}))
    shown = {item["line_id"]: item for item in first["items"]}
    assert set(labeled) <= set(shown)
    wrong, other = labeled
    assert shown[wrong]["label"] == "dialogue" and shown[wrong]["suggestion"] == "scene_heading"
    fix = {"client_event_id": uuid.uuid4().hex, "line_id": wrong, "action": "label", "label": "scene_heading",
           "review": True, "suggestion_shown": "scene_heading"}
    keep = {"client_event_id": uuid.uuid4().hex, "line_id": other, "action": "label", "label": "dialogue",
            "review": True}
    events = {"events": [fix, keep], "held": [i for i in shown if i not in labeled]}
    label_sync.sync(db, label_sync.SyncRequest.parse({**request, **events}))
    again = label_sync.sync(db, label_sync.SyncRequest.parse({**request, **events, "want": 10}))
    assert [r["status"] for r in again["results"]] == ["duplicate", "duplicate"]
    outcomes = [(o["line_id"], o["outcome"], o["label"], o["annotator"]) for o in review_store.review_history(db)]
    assert outcomes == [(wrong, "fixed", "scene_heading", "rev"), (other, "confirmed", "dialogue", "rev")]
    assert label_store.labels_of_lines(db, [wrong, other]) == {
        wrong: {"label": "scene_heading", "source": "human", "annotator": "rev"},
        other: {"label": "dialogue", "source": "human", "annotator": "ana"}}
    assert not {wrong, other} & {item["line_id"] for item in again["items"]}  # reviewed lines leave the queue
