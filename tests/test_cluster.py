"""OCR on a real Dask cluster (a LocalCluster of worker processes on this machine)."""

from __future__ import annotations

import json
import os
import sqlite3

import pytest

from conftest import make_scanned_pdf, make_text_pdf
from labeling.ingest.pdf.cluster import ClusterError, connect, iter_cluster_ocr_pages
from labeling.ingest.pdf.ocr import iter_ocr_pages

pytestmark = pytest.mark.slow
distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  host="127.0.0.1") as local:
        yield local


def test_cluster_ocr_reads_the_same_lines_in_page_order_and_keeps_images_here(cluster, tmp_path):
    scan = make_scanned_pdf(tmp_path / "scan.pdf", make_text_pdf(tmp_path / "src.pdf", pages=3))
    done = []
    remote = list(iter_cluster_ocr_pages(scan, [1, 2, 3], scheduler=cluster.scheduler_address, dpi=200,
                                         image_dir=tmp_path / "images", progress=lambda d, t: done.append((d, t))))
    local = list(iter_ocr_pages(scan, [1, 2, 3], dpi=200, workers=1))
    assert [p.page for p in remote] == [1, 2, 3]
    assert [[line.text for line in p.lines] for p in remote] == [[line.text for line in p.lines] for p in local]
    assert all(p.image_path and (tmp_path / "images").joinpath(f"page-{p.page:04d}.png").exists() for p in remote)
    assert done == [(1, 3), (2, 3), (3, 3)]


def test_an_unreachable_scheduler_is_a_clear_message():
    with pytest.raises(ClusterError, match="cannot reach the Dask scheduler at tcp://127.0.0.1:9"):
        connect("tcp://127.0.0.1:9", timeout_s=2)


def test_the_base_model_trains_its_boosters_on_the_cluster(cluster):
    import numpy as np

    from models.lines.classifier import fit_base
    from test_line_classifier import FAST, make_scripts

    X, y = make_scripts()
    with distributed.Client(cluster) as client:
        remote = fit_base(X, y, config=FAST, n_jobs=1, client=client)
    here = fit_base(X, y, config=FAST, n_jobs=1)
    X_new, y_new = make_scripts(n_scripts=2, seed=7)
    truth = np.array(y_new, dtype=object)
    accuracy_remote = (remote.predict(X_new) == truth).mean()
    accuracy_here = (here.predict(X_new) == truth).mean()
    assert accuracy_remote > 0.9 and abs(accuracy_remote - accuracy_here) < 0.1
    assert remote.stage1_.num_boosted_rounds() == FAST.stage1.n_estimators


def test_ingest_with_a_scheduler_reads_scanned_pages_on_the_cluster(cluster, cli, db_path, tmp_path):
    scan = make_scanned_pdf(tmp_path / "scan.pdf", make_text_pdf(tmp_path / "src.pdf", pages=2))
    result = cli("ingest", str(scan), "--ocr", "always", "--dpi", "200", "--scheduler", cluster.scheduler_address)
    assert result.exit_code == 0, result.output
    [report] = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert report["pages"] == 2 and report["ocr_pages"] == 2 and report["lines"] >= 18
    conn = sqlite3.connect(db_path)
    images = [r[0] for r in conn.execute("SELECT image_path FROM pages ORDER BY page")]
    sources = {r[0] for r in conn.execute("SELECT text_source FROM pages")}
    conn.close()
    assert sources == {"ocr"} and all(image and os.path.exists(image) for image in images)


def test_ingest_with_an_unreachable_scheduler_stores_nothing(cli, db_path, tmp_path):
    scan = make_scanned_pdf(tmp_path / "scan.pdf", make_text_pdf(tmp_path / "src.pdf"))
    result = cli("ingest", str(scan), "--scheduler", "tcp://127.0.0.1:9")
    assert result.exit_code != 0 and "cannot reach the Dask scheduler" in result.output
    assert not db_path.exists() or sqlite3.connect(db_path).execute(
        "SELECT COUNT(*) FROM scripts").fetchone()[0] == 0


def test_predict_with_a_scheduler_runs_the_model_on_the_cluster_and_matches_here(cluster, cli, db_path, tmp_path):
    import numpy as np

    from store import models as model_store
    from store.db import open_db

    [script] = cli.json_lines("ingest", str(make_text_pdf(tmp_path / "two.pdf", pages=2)))
    db = open_db(db_path)
    here = model_store.latest_predictions(db, script["script_id"]).sort_values("line_id")
    db.execute("DELETE FROM predictions")  # what the cluster computes must arrive in this database
    db.conn.commit()
    rows = cli.json_lines("predict", "--scheduler", cluster.scheduler_address)
    assert [(r["script_id"], r["on"], r["lines"]) for r in rows] == [(script["script_id"], "cluster", script["lines"])]
    there = model_store.latest_predictions(db, script["script_id"]).sort_values("line_id")
    assert list(here["line_id"]) == list(there["line_id"]) and list(here["label"]) == list(there["label"])
    assert np.allclose(np.array([json.loads(p) for p in here["probs"]]),
                       np.array([json.loads(p) for p in there["probs"]]), atol=1e-4)
