"""Shared test builders: temporary databases, small screenplay files, the CLI runner."""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("OMP_THREAD_LIMIT", "1")
# Training workers exit after their run here (in the product they wait 120 s for the next one); the tests
# of that warm wait turn it on themselves, so a test run does not leave a worker per retrain behind.
os.environ.setdefault("SCRIPTLABEL_WARM_WORKER_S", "0")

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("SCRIPTLABEL_SHARED_DATA", REPO.parent / "shared" / "data"))
SAMPLE_DIR = REPO / "sample_scripts"

SCREENPLAY_LINES = [
    # (text, x in inches from the left edge, label)
    ("INT. LIGHTHOUSE KITCHEN - NIGHT", 1.5, "scene_heading"),
    ("Rain hammers the windows. MARGO (60s) stirs a pot of soup.", 1.5, "action"),
    ("MARGO", 3.7, "character"),
    ("(without looking up)", 3.1, "parenthetical"),
    ("You're late again, Tim.", 2.5, "dialogue"),
    ("TIM (O.S.)", 3.7, "character"),
    ("The clocks stopped. All of them.", 2.5, "dialogue"),
    ("CUT TO:", 6.8, "transition"),
    ("EXT. LIGHTHOUSE - CONTINUOUS", 1.5, "scene_heading"),
    ("The beam freezes mid-sweep over the black water.", 1.5, "action"),
]


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "scriptlabel.db"


@pytest.fixture
def db(db_path: Path):
    from store.db import open_db

    database = open_db(db_path)
    yield database
    database.close()


def make_text_pdf(path: Path, lines=SCREENPLAY_LINES, pages: int = 1) -> Path:
    """A born-digital screenplay page in Courier 12 (fpdf2), `pages` copies of `lines`."""
    from fpdf import FPDF

    pdf = FPDF(unit="pt", format="letter")
    pdf.set_font("Courier", size=12)
    for _ in range(pages):
        pdf.add_page()
        y = 72.0
        for text, x_in, label in lines:
            if label not in ("dialogue", "parenthetical") and y > 72.0:
                y += 12.0  # a blank line before each element, none inside a speech (standard layout)
            pdf.text(x_in * 72.0, y + 9, text)
            y += 12.0
    pdf.output(str(path))
    return path


def make_scanned_pdf(path: Path, source_pdf: Path, dpi: int = 200) -> Path:
    """An image-only PDF (no text layer) made by rasterizing `source_pdf`."""
    from pdf2image import convert_from_path

    images = convert_from_path(str(source_pdf), dpi=dpi, grayscale=True)
    images[0].save(path, save_all=True, append_images=images[1:], resolution=dpi)
    return path


def db_dump(db_file: Path) -> list[str]:
    """Every row of every table, to check that a failed command left the database as it was."""
    import sqlite3

    if not db_file.exists():
        return []
    conn = sqlite3.connect(db_file)
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


class Cli:
    """The CLI in this process. `label` and `rate` start background retrains as the app's keys do; here
    that is off unless a test asks for it (`retrain_every`, `rate_retrain_every`), so a test that labels
    a dozen lines and then trains has exactly the runs it starts itself."""

    def __init__(self, db_file: Path, *, retrain_every: int = 0, rate_retrain_every: int = 0):
        self.db_file = db_file
        self.runner = CliRunner()
        self.env = {"SCRIPTLABEL_RETRAIN_EVERY": str(retrain_every),
                    "SCRIPTLABEL_RATE_RETRAIN_EVERY": str(rate_retrain_every)}

    def __call__(self, *args: str):
        from labeling.cli import cli

        return self.runner.invoke(cli, ["--db", str(self.db_file), *args], catch_exceptions=False, env=self.env)

    def json_lines(self, *args: str) -> list[dict]:
        result = self(*args)
        assert result.exit_code == 0, result.stderr
        return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


@pytest.fixture
def pdf_script(db, tmp_path):
    """A one-page born-digital PDF script in `db` (see app_builders)."""
    import app_builders  # imports this module: not at the top

    return app_builders.pdf_script(db, tmp_path)


@pytest.fixture
def text_script(db, tmp_path):
    """A plain-text script in `db` (see app_builders)."""
    import app_builders

    return app_builders.text_script(db, tmp_path)


@pytest.fixture
def cli(db_path: Path) -> Cli:
    return Cli(db_path)


def require_shared_data(*parts: str) -> Path:
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared data not found at {path} (set SCRIPTLABEL_SHARED_DATA or check out ../shared)")
    return path


@pytest.fixture(scope="module")
def browser():
    """Headless Debian Chromium (Playwright, never its own download), one per test module; each test opens
    its own pages or contexts."""
    from browser_support import CHROMIUM, CHROMIUM_ARGS, require_browser

    sync_api = require_browser()
    with sync_api.sync_playwright() as p:
        instance = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield instance
        instance.close()
