"""The Sequences page's pieces: screenplay layout as plain text, page images, run status."""

from __future__ import annotations

import pandas as pd
import pytest

from labeling.sequences.view import page_images, run_status_text, screenplay_text
from store.rules import character_name
from store.types import PageInfo


def test_screenplay_text_lays_out_by_label_and_drops_page_furniture():
    lines = pd.DataFrame({"line_no": [1, 2, 3, 4, 5, 6, 7], "shown": [
        "scene_heading", "action", "other", "character", "parenthetical", "dialogue", "transition"], "text": [
        "int. kitchen - night", "Rain <b>hammers</b> the windows.", "12.", "margo", "(dry)", "You're late.",
        "CUT TO:"]})
    text = screenplay_text(lines)
    assert text.splitlines() == [
        "INT. KITCHEN - NIGHT", "", "Rain <b>hammers</b> the windows.", "", " " * 22 + "MARGO",
        " " * 16 + "(dry)", " " * 10 + "You're late.", "", "CUT TO:".rjust(60)]
    assert screenplay_text(lines, first_line_no=4, last_line_no=5).splitlines()[0].strip() == "MARGO"


def test_page_images_only_lists_pages_with_an_image(tmp_path):
    image = tmp_path / "p1.png"
    image.write_bytes(b"png")
    pages = {1: PageInfo(1, 612, 792, str(image), 72, "text_layer"),
             2: PageInfo(2, 612, 792, str(tmp_path / "gone.png"), 72, "text_layer"),
             3: PageInfo(3, 85, 66, None, None, "text")}
    assert page_images(pages, 1, 3) == [(1, str(image))]


def test_run_status_text():
    assert "No fx complexity model" in run_status_text(None, "fx")
    assert "running" in run_status_text({"status": "running", "trigger": "auto-ratings"}, "fx")
    assert "kept aside" in run_status_text({"status": "done", "trigger": "auto-ratings", "version": 4,
                                            "metrics": {"became_current": False}}, "fx")
    assert "failed: boom" in run_status_text({"status": "failed", "trigger": "manual", "error": "boom"}, "fx")


@pytest.mark.parametrize("cue, name", [("TIM", "TIM"), ("TIM (V.O.)", "TIM"), ("MARGO (CONT'D)", "MARGO"),
                                       ("DR. HALE (O.S.) (CONT'D)", "DR. HALE"), ("KIT CONT'D", "KIT"),
                                       ("  dr. lee  (cont'd)", "DR. LEE"), ("TIM (CONT'D):", "TIM")])
def test_character_names_lose_their_extensions(cue, name):
    assert character_name(cue) == name
