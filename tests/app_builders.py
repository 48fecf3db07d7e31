"""Builders shared by the app's tests: small scripts in a database, made-up model predictions."""

from __future__ import annotations

import numpy as np
from conftest import make_text_pdf

from labeling.ingest.pipeline import ingest_path
from store import models as model_store
from store import scripts as script_store
from store.types import LABELS

TEXT_SCRIPT = """INT. CLOCK SHOP - DAY

Tim winds a clock.

                      TIM
          It stopped again.

                      MARGO
                (from the back)
          They all stop at noon.

CONTINUED:

Tim winds another clock.

CONTINUED:

                                                  CUT TO:
"""


def pdf_script(db, tmp_path, *, pages: int = 2) -> int:
    """The conftest screenplay page as a born-digital PDF, `pages` identical pages; returns its script id."""
    return ingest_path(db, make_text_pdf(tmp_path / "lighthouse.pdf", pages=pages)).script_id


def text_script(db, tmp_path) -> int:
    path = tmp_path / "clock_shop.txt"
    path.write_text(TEXT_SCRIPT)
    return ingest_path(db, path).script_id


def predict(db, script_id, *, label="action", confidence=0.6, n_labels=0, metrics=None) -> int:
    """A model version with made-up predictions: `label` at `confidence` for every line."""
    lines = script_store.lines_frame(db, script_id)
    proba = np.full((len(lines), len(LABELS)), (1 - confidence) / (len(LABELS) - 1))
    proba[:, LABELS.index(label)] = confidence
    version = model_store.register_version(db, kind="lines", path="unused", metrics=metrics or {}, n_labels=n_labels)
    model_store.save_predictions(db, version, list(lines["line_id"]), proba)
    return version


def sample_gold_lines(db, script_id):
    """The bundled sample's lines whose true label its own Fountain source gives (a simulated annotator's
    answers): the lines frame plus a `gold` column."""
    from conftest import SAMPLE_DIR
    from labeling.ingest.formats.fountain import parse_fountain

    gold = {line.text: line.imported_label
            for line in parse_fountain((SAMPLE_DIR / "tim_time.fountain").read_text())}
    frame = script_store.lines_frame(db, script_id)
    frame = frame[frame["text"].isin(gold)]
    return frame.assign(gold=frame["text"].map(gold)).reset_index(drop=True)


def sequence_edit_controls(at) -> list[dict]:
    """The Sequences page's split/merge/undo elements (app_pages/sequence_edit) as the page mounted them:
    the JSON data each hands the browser, with its mode, sequence and version, or edit id."""
    import json

    return [json.loads(node.proto.json) for node in at.get("bidi_component")
            if node.proto.component_name == "scriptlabel_sequence_edit"]


def post_sequence_edit(db, db_path, action: str, **fields) -> dict:
    """One click of those elements, sent as the browser sends it to the app's own route."""
    import uuid

    from starlette.applications import Starlette
    from starlette.testclient import TestClient

    from labeling.sequences import api as sequence_api
    from store.db import database_uid

    client = TestClient(Starlette(routes=sequence_api.routes(db_path)), base_url="http://testserver")
    answer = client.post("/api/sequences/edit", headers={"X-Scriptlabel": "1"}, json={
        "database": database_uid(db), "action": action, "client_id": f"click-{uuid.uuid4().hex}",
        "annotator": "ana", **fields})
    assert answer.status_code == 200, answer.text
    return answer.json()
