"""Fountain reader and writer, on the development samples in ../shared/data and small made-up texts."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from conftest import SHARED_DATA, require_shared_data

from labeling.ingest.formats.fountain import (
    FountainError,
    fountain_lines,
    parse_fountain,
    read_fountain_file,
    write_fountain,
)
from store.types import LABELS, LineLabel, ScriptlabelError, UnknownLabelError

SAMPLES = SHARED_DATA / "fountain_samples"
SAMPLE_FILES = sorted(SAMPLES.glob("*/*.fountain"))


def sample(name: str) -> Path:
    matches = list(SAMPLES.glob(f"*/{name}"))
    if not matches:
        pytest.skip(
            f"shared data not found at {SAMPLES}/*/{name} (set SCRIPTLABEL_SHARED_DATA or check out ../shared)"
        )
    return matches[0]


def labeled(lines) -> list[tuple[str, str]]:
    return [(line.text, line.imported_label) for line in lines]


@pytest.mark.skipif(
    not SAMPLE_FILES,
    reason=f"shared data not found at {SAMPLES} (set SCRIPTLABEL_SHARED_DATA or check out ../shared)",
)
@pytest.mark.parametrize("path", SAMPLE_FILES, ids=lambda p: p.name)
def test_every_sample_parses_to_clean_labeled_lines(path):
    source = path.read_text(encoding="utf-8").splitlines()
    lines = read_fountain_file(path)
    assert len(lines) > 20
    assert [line.line_no for line in lines] == list(range(1, len(lines) + 1))
    numbers = [line.source_line_no for line in lines]
    assert numbers == sorted(set(numbers)), "one Line per source line, in order"
    for line, following in zip(lines, lines[1:] + [None]):
        assert line.imported_label in LABELS
        assert line.text and line.text == line.text.strip()
        assert not line.text.startswith(("!", "@", "~", ">", "[[", "/*", "#")), line
        assert not line.text.endswith("^")
        # The words come from the source line it points at (syntax and emphasis aside).
        first_word = line.text.split()[0].strip("*_")
        assert first_word in source[line.source_line_no - 1].replace("*", "").replace("_", "")
        if line.imported_label == "character":
            assert following is not None and following.imported_label in ("dialogue", "parenthetical"), line
    # Every sample has a title page, read as `other`, and nothing else is `other`.
    others = [line for line in lines if line.imported_label == "other"]
    assert others and others == lines[: len(others)]


@pytest.mark.parametrize(
    ("name", "headings"),
    [
        # Counted by hand: INT./EXT. lines plus forced `.` headings (SNIPER SCOPE POV, OPENING TITLES).
        ("Brick-and-Steel.fountain", 8),
        ("The-Last-Birthday-Card.fountain", 48),
        ("Big-Fish.fountain", 190),
        ("how-to-be-a-bad-screenwriter.fountain", 2),
        ("na-kazda-droge.fountain", 8),  # Polish headings, every one forced with `.`
    ],
)
def test_scene_heading_counts_match_a_hand_count(name, headings):
    lines = read_fountain_file(sample(name))
    assert sum(line.imported_label == "scene_heading" for line in lines) == headings


def test_scene_heading_counts_match_the_studio_pdf_inventory():
    inventory = require_shared_data("studio_pdfs", "inventory.tsv")
    with inventory.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    assert len(rows) >= 10
    for row in rows:
        lines = read_fountain_file(inventory.parent / "fountain" / f"{row['slug']}.fountain")
        headings = sum(line.imported_label == "scene_heading" for line in lines)
        assert headings == int(row["fountain_scene_headings"]), row["slug"]


def test_brick_and_steel_elements():
    lines = read_fountain_file(sample("Brick-and-Steel.fountain"))
    by_source = {line.source_line_no: line for line in lines}
    # Title page: values only (keys and emphasis removed), all `other`.
    assert labeled(lines[:4]) == [
        ("BRICK & STEEL", "other"),
        ("FULL RETIRED", "other"),
        ("Written by", "other"),
        ("Stu Maschwitz", "other"),
    ]
    assert (by_source[80].text, by_source[80].imported_label) == ("SNIPER SCOPE POV", "scene_heading")
    assert (by_source[48].text, by_source[48].imported_label) == ("BRICK", "character")  # `BRICK ^`
    assert by_source[49].imported_label == "dialogue"
    assert (by_source[57].text, by_source[57].imported_label) == ("JACK", "character")  # tab-indented
    assert by_source[58].imported_label == "parenthetical"
    assert by_source[59].text == "Did you know Brick and Steel are retired?"  # *emphasis* removed
    assert by_source[63].text == "Permanently."
    assert (by_source[67].text, by_source[67].imported_label) == ("CUT TO:", "transition")
    assert (by_source[97].text, by_source[97].imported_label) == ("BRICK BRADDOCK", "action")  # > centered <
    assert (by_source[158].text, by_source[158].imported_label) == ("BURN TO PINK.", "transition")  # forced >
    assert (by_source[160].text, by_source[160].imported_label) == ("THE END", "action")


def test_sections_and_synopses_are_not_script_lines():
    lines = read_fountain_file(sample("The-Last-Birthday-Card.fountain"))
    texts = [line.text for line in lines]
    assert not any(text.startswith(("ACT I", "Meet Scott", "Meet the players")) for text in texts)
    hit = next(line for line in lines if line.source_line_no == 14)  # `> HERE WE GO:`
    assert (hit.text, hit.imported_label) == ("HERE WE GO:", "transition")


def test_page_breaks_and_lyrics():
    big_fish = read_fountain_file(sample("Big-Fish.fountain"))
    assert {line.page for line in big_fish if line.source_line_no < 13} == {1}
    assert {line.page for line in big_fish if line.source_line_no > 13} == {2}  # `====` on line 13
    song = read_fountain_file(sample("listen-to-your-heart.fountain"))
    lyric = next(line for line in song if line.source_line_no == 20)
    assert lyric.imported_label == "dialogue" and lyric.text.startswith("I don't know where")
    dual = next(
        line for line in read_fountain_file(sample("sunflower.fountain")) if line.source_line_no == 203
    )
    assert (dual.text, dual.imported_label) == ("GIRL", "character")


SYNTHETIC = """\
Title: _The **Test**_
Author: Nobody
Contact:
    12 Any Street

INT. LAB - NIGHT #7A#

!SUDDENLY A NOISE.
The lab hums. [[a note that is not script]] Nobody moves.

/* A cut scene
EXT. NOWHERE - DAY

GHOST
Boo.
*/

@McGREGOR (O.S.)
(whispering)
Is it on?
~La la la
  
Still here.

PIP ^
Yes!

[[A whole note line]]

===

FADE OUT.

Some text \\*not emphasis\\* and snake_case_name.

.title card

> THE END <
"""


def test_forced_elements_notes_boneyard_and_geometry():
    elements = fountain_lines(SYNTHETIC)
    got = [(e.source_line_no, e.kind, e.text) for e in elements]
    assert got == [
        (1, "title", "The Test"),
        (2, "title", "Nobody"),
        (4, "title", "12 Any Street"),
        (6, "heading", "INT. LAB - NIGHT"),
        (8, "action", "SUDDENLY A NOISE."),
        (9, "action", "The lab hums. Nobody moves."),
        (18, "character", "McGREGOR (O.S.)"),
        (19, "parenthetical", "(whispering)"),
        (20, "dialogue", "Is it on?"),
        (21, "lyric", "La la la"),
        (23, "dialogue", "Still here."),
        (25, "character", "PIP"),
        (26, "dialogue", "Yes!"),
        (32, "transition", "FADE OUT."),
        (34, "action", "Some text *not emphasis* and snake_case_name."),
        (36, "heading", "title card"),
        (38, "centered", "THE END"),
    ]
    assert elements[3].scene_number == "7A"
    assert elements[11].dual and not elements[6].dual
    lines = parse_fountain(SYNTHETIC)
    assert [line.imported_label for line in lines][:4] == ["other"] * 3 + ["scene_heading"]
    by_text = {line.text: line for line in lines}
    assert by_text["INT. LAB - NIGHT"].indent == 15
    assert by_text["McGREGOR (O.S.)"].indent == 37
    assert by_text["(whispering)"].indent == 31
    assert by_text["Is it on?"].indent == 25
    assert by_text["FADE OUT."].x1 == 75 and by_text["FADE OUT."].imported_label == "transition"
    assert by_text["Still here."].gap_before == 1  # the two-space line keeps the speech together
    assert by_text["FADE OUT."].page == 2 and by_text["Yes!"].page == 1
    assert by_text["FADE OUT."].y0 == 1 == by_text["FADE OUT."].gap_before  # one blank line after `===`
    assert by_text["Is it on?"].y0 == by_text["(whispering)"].y0 + 1


def test_fade_in_on_the_first_line_is_not_a_title_page():
    lines = parse_fountain("FADE IN:\n\nEXT. PARK - DAY\n\nBirds.\n")
    assert labeled(lines) == [
        ("FADE IN:", "transition"),
        ("EXT. PARK - DAY", "scene_heading"),
        ("Birds.", "action"),
    ]


def test_heading_without_blank_line_after_is_still_a_heading():
    lines = parse_fountain("INT. HALL - DAY\nTim runs.\n\nTIM\nLate again!\n")
    assert [line.imported_label for line in lines] == ["scene_heading", "action", "character", "dialogue"]


@pytest.mark.skipif(
    not SAMPLE_FILES,
    reason=f"shared data not found at {SAMPLES} (set SCRIPTLABEL_SHARED_DATA or check out ../shared)",
)
@pytest.mark.parametrize("path", SAMPLE_FILES, ids=lambda p: p.name)
def test_write_fountain_round_trips_every_sample(path):
    lines = read_fountain_file(path)
    for rows in (
        [(l.text, l.imported_label) for l in lines],
        [(l.text, l.imported_label, l.gap_before) for l in lines],
    ):
        assert labeled(parse_fountain(write_fountain(rows))) == labeled(lines)


def test_write_fountain_forces_what_would_read_differently():
    rows = [
        ("PAGE 1 TITLE MATTER", "other"),
        ("THE KITCHEN", "scene_heading"),  # no INT./EXT.: needs `.`
        ("BANG!", "action"),  # upper case followed by more action: would read as a cue
        ("The door flies open.", "action"),
        ("INT. is what the sign says.", "action"),
        ("McCLANE", "character"),  # mixed case: needs `@`
        ("Yippee *ki* yay_.", "dialogue"),
        ("(MORE)", "other"),  # inside a speech broken by a page
        ("12.", "other"),
        ("McCLANE (CONT'D)", "character"),
        ("Go on.", "dialogue"),
        ("LONE CUE", "character"),
        ("SLOW DISSOLVE", "transition"),  # no TO:, needs `>`
        ("CUT TO:", "transition"),
        ("# not a section", "action"),
        ("~ not a lyric", "action"),
    ]
    text = write_fountain(rows, title="Round Trip")
    assert "[[other: (MORE)]]" in text and "Title: Round Trip" in text
    assert labeled(parse_fountain(text)) == [("Round Trip", "other")] + rows


def test_write_fountain_accepts_label_enums_and_rejects_unknown_labels():
    assert labeled(parse_fountain(write_fountain([("EXT. SEA - DAY", LineLabel.SCENE_HEADING)]))) == [
        ("EXT. SEA - DAY", "scene_heading")
    ]
    with pytest.raises(UnknownLabelError):
        write_fountain([("Hello", "speech")])


@pytest.mark.parametrize(
    "text", ["", "   \n\n", "[[just a note]]\n\n/* and boneyard */\n", "# Act One\n\n= synopsis\n"]
)
def test_empty_fountain_text_raises_an_actionable_error(text):
    with pytest.raises(FountainError, match="my.fountain"):
        parse_fountain(text, source="my.fountain")


def test_empty_fountain_file_names_the_file(tmp_path):
    path = tmp_path / "empty.fountain"
    path.write_bytes(b"")
    with pytest.raises(ScriptlabelError, match="empty.fountain"):
        read_fountain_file(path)
