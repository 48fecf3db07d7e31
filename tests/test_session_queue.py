"""labeling/session/queue.py: the unlabeled pool, ranked, identical lines collapsed into one item."""

from __future__ import annotations

import numpy as np
import pytest

import app_builders as builders
from labeling.session.queue import build_queue, identical_key, unlabeled_pool
from labeling.session.strategies import EmptyPoolError
from store import claims as claim_store
from store import labels as label_store
from store import models as model_store
from store import scripts as script_store
from store.types import LABELS


def test_identical_lines_match_after_whitespace_at_the_same_indent_level():
    assert identical_key("CUT  TO:", 60.0) == identical_key(" CUT TO: ", 61.0)
    assert identical_key("CUT TO:", 61.0) != identical_key("CUT TO:", 10.0)
    assert identical_key("HANK", 37.0) != identical_key("Hank", 37.0)
    assert identical_key("CONTINUED: (2)") != identical_key("CONTINUED: (3)")


def test_reading_order_groups_the_same_line_on_every_page(db, tmp_path):
    script = builders.pdf_script(db, tmp_path, pages=2)  # two identical pages: every line twice
    lines = script_store.lines_frame(db, script)
    items = build_queue(db, script_id=script, strategy="script", n=3)
    assert [i.text for i in items] == list(lines["text"][:3])
    first = lines[lines["text"] == items[0].text]["line_id"].tolist()
    assert len(first) == 2 and items[0].group_line_ids == first
    assert items[0].as_json()["group_size"] == 2


def test_labeled_excluded_and_claimed_lines_leave_the_pool(db, tmp_path):
    script = builders.pdf_script(db, tmp_path, pages=1)
    ids = script_store.lines_frame(db, script)["line_id"].tolist()
    label_store.add_label(db, ids[0], "scene_heading", annotator="ana")
    claim_store.hold(db, [ids[1]], annotator="ben", tab="t1")
    items = build_queue(db, script_id=script, strategy="script", n=100, annotator="ana", tab="t2",
                        exclude={ids[2]})
    shown = {i.line_id for i in items}
    assert shown == set(ids[3:])
    assert ids[1] in {i.line_id for i in build_queue(db, script_id=script, strategy="script", n=100)}
    assert len(unlabeled_pool(db, script)) == len(ids) - 1


def test_margin_puts_the_least_certain_line_first(db, tmp_path):
    script = builders.pdf_script(db, tmp_path, pages=1)
    ids = script_store.lines_frame(db, script)["line_id"].tolist()
    proba = np.full((len(ids), len(LABELS)), 0.01)
    proba[:, 1] = 1 - 0.01 * (len(LABELS) - 1)  # sure of "action" everywhere ...
    proba[4] = [0.3, 0.29] + [0.41 / (len(LABELS) - 2)] * (len(LABELS) - 2)  # ... but line 5
    version = model_store.register_version(db, kind="lines", path="unused", metrics={}, n_labels=0)
    model_store.save_predictions(db, version, ids, proba)
    items = build_queue(db, script_id=script, strategy="margin", n=3, random_share=0.0, seed=1)
    assert items[0].line_id == ids[4] and items[0].suggestion == LABELS[0]
    assert items[0].confidence == pytest.approx(0.3, abs=1e-4)


def test_an_empty_pool_is_a_named_error(db, tmp_path):
    script = builders.pdf_script(db, tmp_path, pages=1)
    ids = script_store.lines_frame(db, script)["line_id"].tolist()
    label_store.add_labels(db, ids, "action", annotator="ana")
    with pytest.raises(EmptyPoolError, match="nothing left"):
        build_queue(db, script_id=script)


@pytest.mark.parametrize("strategy", ["diverse", "margin", "random"])
def test_lines_a_rule_already_labeled_are_never_offered(db, tmp_path, strategy):
    """INT./EXT. headings carry the rule's label (store.labels.effective_labels): the queue asks about the
    rest (issue 25: the diverse queue offered 11 of 98 lines a rule had already labeled)."""
    from store.rules import rule_label

    script = builders.pdf_script(db, tmp_path, pages=2)
    lines = script_store.lines_frame(db, script)
    headings = set(lines.loc[lines["text"].map(rule_label).notna(), "line_id"])
    assert len(headings) == 4  # two per page in the builder's screenplay
    builders.predict(db, script, label="action", confidence=0.4)  # the model unsure everywhere, headings too
    items = build_queue(db, script_id=script, strategy=strategy, n=100, seed=3)
    offered = {line_id for item in items for line_id in item.group_line_ids}
    assert not offered & headings
    assert offered == set(lines["line_id"]) - headings  # every other line is still there to label


def test_a_claim_holds_lines_from_others_until_it_expires(db, tmp_path, monkeypatch):
    """A tab's claim keeps its lines out of everyone else's queue only for its time to live: a tab that died
    without giving them back blocks nobody for long."""
    import store.claims as claims_module

    class Clock:
        now = 1_000_000.0

        def time(self) -> float:
            return self.now

    clock = Clock()
    monkeypatch.setattr(claims_module, "time", clock)
    script = builders.pdf_script(db, tmp_path, pages=1)
    ids = script_store.lines_frame(db, script)["line_id"].tolist()
    assert claim_store.hold(db, ids[:3], annotator="ana", tab="t1", ttl_s=60) == ids[:3]
    assert claim_store.claimed_by_others(db, annotator="ben", tab="b") == set(ids[:3])
    assert claim_store.hold(db, ids[:5], annotator="ben", tab="b", ttl_s=60) == ids[3:5]  # only the free ones
    queued = {i.line_id for i in build_queue(db, script_id=script, strategy="script", n=100, annotator="cy", tab="c")}
    assert not queued & set(ids[:5])
    clock.now += 61  # ana's and ben's claims are past their time
    assert claim_store.claimed_by_others(db, annotator="cy", tab="c") == set()
    assert claim_store.hold(db, ids[:3], annotator="cy", tab="c", ttl_s=60) == ids[:3]
    queued = {i.line_id for i in build_queue(db, script_id=script, strategy="script", n=100, annotator="ana", tab="t1")}
    assert not queued & set(ids[:3]) and set(ids[3:5]) <= queued
