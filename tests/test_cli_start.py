"""The light commands start without the heavy libraries (issue 25: a script that labels through the CLI
should not wait for pandas, numpy or xgboost on every call). A behaviour test: which modules a fresh
process loaded, not how long it took (bench/cli_start.py measures that)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import REPO, SAMPLE_DIR

HEAVY = ("numpy", "pandas", "pyarrow", "xgboost", "sklearn", "scipy", "streamlit", "pymupdf", "keras", "jax")

# Runs the CLI in-process as the installed script does, then reports what it loaded on stdout's last line.
PROBE = """
import json, sys
from labeling.cli import main
try:
    main()
except SystemExit as exc:
    code = exc.code
else:
    code = 0
print(json.dumps({"code": code, "loaded": sorted({m.split('.')[0] for m in sys.modules})}))
"""


def run_probe(db_path, *args: str) -> tuple[list[str], dict]:
    done = subprocess.run([sys.executable, "-c", PROBE, *args], cwd=REPO, capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(db_path.parent), "SCRIPTLABEL_DB": str(db_path)},
                          timeout=120)
    *output, report = done.stdout.strip().splitlines()
    return output, json.loads(report)


@pytest.fixture(scope="module")
def sample_db(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "scriptlabel.db"
    done = subprocess.run([sys.executable, "-m", "labeling.cli", "--db", str(path), "ingest",
                           str(SAMPLE_DIR / "tim_time.fountain")], cwd=REPO, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    return path


@pytest.mark.parametrize("args", [
    ["--version"],
    ["scripts"],
    ["sequences"],
    ["sequences", "--script", "1"],
    ["label", "7", "dialogue", "--annotator", "probe"],
    ["rate", "2", "4", "--annotator", "probe"],
    ["label", "999999", "dialogue"],  # the error path too: a message, and still nothing heavy
], ids=lambda args: " ".join(args))
def test_light_commands_load_no_heavy_library(sample_db, args):
    output, report = run_probe(sample_db, *args)
    assert not set(report["loaded"]) & set(HEAVY), (args, set(report["loaded"]) & set(HEAVY))
    if args[0] != "label" or args[1] != "999999":
        assert report["code"] == 0 and output, (args, output)
    else:
        assert report["code"] != 0


@pytest.fixture(scope="module")
def pdf_db(tmp_path_factory):
    """The sample PDF: no labels from the file, the shipped model's suggestions on every line."""
    path = tmp_path_factory.mktemp("cli_pdf") / "scriptlabel.db"
    done = subprocess.run([sys.executable, "-m", "labeling.cli", "--db", str(path), "ingest",
                           str(SAMPLE_DIR / "tim_time.pdf")], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return path


@pytest.mark.parametrize("args", [
    ["queue", "--n", "5"],
    ["queue", "--n", "5", "--strategy", "margin", "--annotator", "probe", "--script", "1"],
    ["queue", "--n", "5", "--strategy", "random", "--seed", "4"],
], ids=lambda args: " ".join(args))
def test_the_queue_ranks_without_a_heavy_library(pdf_db, args):
    """`queue` ranks the model's stored suggestions in plain Python: items with suggestions, nothing heavy."""
    output, report = run_probe(pdf_db, *args)
    assert not set(report["loaded"]) & set(HEAVY), (args, set(report["loaded"]) & set(HEAVY))
    assert report["code"] == 0
    items = [json.loads(line) for line in output]
    assert len(items) == 5 and len({item["line_id"] for item in items}) == 5
    assert all(item["suggestion"] and 0 < item["confidence"] <= 1 for item in items)


def test_an_empty_queue_says_so_without_a_heavy_library(sample_db):
    """The Fountain sample comes labeled by its format: nothing to ask, said in one line."""
    done = subprocess.run([sys.executable, "-c", PROBE, "queue"], cwd=REPO, capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(sample_db.parent), "SCRIPTLABEL_DB": str(sample_db)},
                          timeout=120)
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["code"] != 0 and not set(report["loaded"]) & set(HEAVY)
    assert "nothing left in the queue" in done.stderr and "Traceback" not in done.stderr


def test_light_commands_still_do_their_work(sample_db):
    """The lazy imports changed nothing a user sees: the label and the rating are stored and listed."""
    _, report = run_probe(sample_db, "label", "9", "action", "--annotator", "probe2")
    assert report["code"] == 0
    from store.db import open_db
    from store.labels import effective_labels

    labels = effective_labels(open_db(sample_db), 1)
    assert labels.set_index("line_id").loc[9, "label"] == "action"
    output, _ = run_probe(sample_db, "scripts")
    assert json.loads(output[0])["labeled"] >= 1


def test_sqlite_utils_maps_numpy_and_pandas_types_once_loaded(tmp_path):
    """store imports sqlite-utils with numpy/pandas hidden; a process that loads them later gets the same
    column types sqlite-utils would have given (a table made from numpy and pandas values)."""
    code = """
import sys
import store.db
assert "numpy" not in sys.modules and "pandas" not in sys.modules
import numpy as np, pandas as pd
from sqlite_utils import Database
db = Database(memory=True)
db["t"].insert({"i": np.int64(3), "f": np.float32(1.5), "u": np.uint8(2), "when": pd.Timestamp("2020-01-02")})
print(sorted((c.name, c.type) for c in db["t"].columns))
"""
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(sorted([("f", "REAL"), ("i", "INTEGER"), ("u", "INTEGER"), ("when", "TEXT")]))
