"""The labeling queue's `diverse` order: one line per kind of line, and patterns people labeled step back."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import SCREENPLAY_LINES
from labeling.ingest.pipeline import ingest_path
from labeling.session import queue
from labeling.session.record import record_label
from store import models as model_store
from store import scripts as script_store
from store.types import LABELS

PAGES = 12


def _paged_pdf(path):
    """A born-digital script: the conftest page `PAGES` times, each page numbered "N." at the top right."""
    from fpdf import FPDF

    pdf = FPDF(unit="pt", format="letter")
    pdf.set_font("Courier", size=12)
    for page in range(1, PAGES + 1):
        pdf.add_page()
        pdf.text(7.0 * 72, 0.5 * 72 + 9, f"{page}.")
        y = 72.0
        for text, x_in, label in SCREENPLAY_LINES:
            if label not in ("dialogue", "parenthetical") and y > 72.0:
                y += 12.0
            pdf.text(x_in * 72.0, y + 9, f"{text} {page}" if label == "action" else text)
            y += 12.0
    pdf.output(str(path))
    return path


def _proba(label: str, p: float) -> list[float]:
    row = [(1 - p) / (len(LABELS) - 1)] * len(LABELS)
    row[LABELS.index(label)] = p
    return row


@pytest.fixture
def numbered(db, tmp_path):
    """The script with made-up suggestions: page numbers `other` at 0.55 (the least sure lines), the
    rest right at 0.7–0.95, so a margin queue is page numbers first."""
    script_id = ingest_path(db, _paged_pdf(tmp_path / "numbered.pdf")).script_id
    lines = script_store.lines_frame(db, script_id)
    truth = {text: label for text, _x, label in SCREENPLAY_LINES}
    proba, numbers = [], []
    for row in lines.itertuples():
        if row.text.rstrip(".").isdigit():
            numbers.append(int(row.line_id))
            proba.append(_proba("other", 0.55))
        else:
            label = truth.get(row.text, "action")
            proba.append(_proba(label, 0.7 + 0.25 * (row.line_no % 4) / 3))
    version = model_store.register_version(db, kind="lines", path="unused", metrics={}, n_labels=0)
    model_store.save_predictions(db, version, [int(i) for i in lines["line_id"]], np.array(proba))
    assert len(numbers) == PAGES
    return script_id, set(numbers), version


def test_diverse_batch_holds_one_line_per_kind(db, numbered):
    script_id, numbers, _version = numbered
    by_margin = queue.build_queue(db, script_id=script_id, strategy="margin", n=8, random_share=0)
    # seven kinds of line once the INT./EXT. headings (labeled by their rule) leave the pool
    diverse = queue.build_queue(db, script_id=script_id, strategy="diverse", n=7, random_share=0)
    assert sum(i.line_id in numbers for i in by_margin) == 8  # margin: eight page numbers in a row
    assert sum(i.line_id in numbers for i in diverse) == 1  # diverse: the least sure page number, then other kinds
    assert diverse[0].line_id in numbers
    kinds = {(i.suggestion, queue.text_shape(i.text)) for i in diverse}
    assert len(kinds) >= 5


def test_a_pattern_labeled_twice_leaves_the_top_of_the_queue(db, numbered):
    script_id, numbers, _version = numbered
    first, second, *rest = sorted(numbers)
    for line_id in (first, second):
        record_label(db, line_id, "other", annotator="ana")
    diverse = queue.build_queue(db, script_id=script_id, strategy="diverse", n=15, random_share=0)
    assert not {i.line_id for i in diverse} & numbers  # the other ten page numbers wait behind every other line
    margin = queue.build_queue(db, script_id=script_id, strategy="margin", n=10, random_share=0)
    assert all(i.line_id in numbers for i in margin)  # margin alone keeps asking about them
    everything = queue.build_queue(db, script_id=script_id, strategy="diverse", n=10_000, random_share=0)
    assert {i.line_id for i in everything} >= set(rest)  # stepped back, not hidden


def test_a_pattern_line_the_model_still_gets_wrong_stays_up(db, numbered):
    script_id, numbers, version = numbered
    first, second, third, *_ = sorted(numbers)
    for line_id in (first, second):
        record_label(db, line_id, "other", annotator="ana")
    model_store.save_predictions(db, version, [third], np.array([_proba("action", 0.55)]))
    diverse = queue.build_queue(db, script_id=script_id, strategy="diverse", n=5, random_share=0)
    assert diverse[0].line_id == third  # suggested `action` where people said `other` twice: worth a look


def test_pattern_key_groups_numbers_at_one_level():
    assert queue.pattern_key("81.", 69.6) == queue.pattern_key("115.", 68.7)
    assert queue.pattern_key("CONTINUED: (2)", 15) == queue.pattern_key("CONTINUED: (13)", 15)
    assert queue.pattern_key("81.", 69.6) != queue.pattern_key("81.", 15.0)
    assert queue.pattern_key("She walks to the door and opens it slowly.", 15) is None
