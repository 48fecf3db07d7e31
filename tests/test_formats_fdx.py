"""Final Draft XML reader, on the screenplain samples in ../shared/data and small made-up documents."""

from __future__ import annotations

import difflib
import re
from pathlib import Path

import pytest
from conftest import require_shared_data

from labeling.ingest.formats.fdx import FdxFormatError, parse_fdx, read_fdx_file
from labeling.ingest.formats.fountain import read_fountain_file

STEMS = ["Brick-and-Steel", "The-Last-Birthday-Card", "Big-Fish"]


def example(name: str) -> Path:
    return require_shared_data("fountain_samples", "screenplain_examples", name)


@pytest.mark.parametrize("stem", STEMS)
def test_paragraph_types_become_labels(stem):
    path = example(f"{stem}.fdx")
    xml = path.read_text(encoding="utf-8")
    lines = read_fdx_file(path)
    assert [line.line_no for line in lines] == list(range(1, len(lines) + 1))
    assert all(line.text == line.text.strip() and line.text for line in lines)
    assert all(line.source_line_no is None and line.page == 1 for line in lines)
    # Headings, cues and transitions are one line each, so they count like the paragraphs.
    for fdx_type, label in [
        ("Scene Heading", "scene_heading"),
        ("Character", "character"),
        ("Transition", "transition"),
    ]:
        paragraphs = len(re.findall(rf'Type="{fdx_type}"', xml))
        assert sum(line.imported_label == label for line in lines) == paragraphs
    assert not any(line.imported_label == "other" for line in lines)  # no title page in these


@pytest.mark.parametrize(
    ("stem", "min_agreement"),
    # Measured: 91/91, 488/491 (0.994) and 2763/2766 (0.999) lines agree. The only disagreements
    # are FADE IN: / FADE OUT. / INTERCUT WITH: / CUT TO BLACK., which screenplain writes as
    # Action and we read as transitions (DESIGN.md conventions).
    [("Brick-and-Steel", 1.0), ("The-Last-Birthday-Card", 0.99), ("Big-Fish", 0.998)],
)
def test_fountain_and_fdx_of_the_same_script_agree(stem, min_agreement):
    fountain = read_fountain_file(example(f"{stem}.fountain"))
    fdx = read_fdx_file(example(f"{stem}.fdx"))
    matcher = difflib.SequenceMatcher(None, [l.text for l in fountain], [l.text for l in fdx], autojunk=False)
    pairs = [(fountain[b.a + k], fdx[b.b + k]) for b in matcher.get_matching_blocks() for k in range(b.size)]
    assert len(pairs) == len(fdx), "every FDX line has its Fountain line, word for word"
    assert len(fountain) - len(fdx) == sum(l.imported_label == "other" for l in fountain)  # title page
    agree = sum(a.imported_label == b.imported_label for a, b in pairs)
    assert agree / len(pairs) >= min_agreement
    disagreements = {
        (a.imported_label, b.imported_label, a.text) for a, b in pairs if a.imported_label != b.imported_label
    }
    assert all(ours == "transition" and theirs == "action" for ours, theirs, _ in disagreements), (
        disagreements
    )


def test_runs_dual_dialogue_and_line_breaks():
    lines = read_fdx_file(example("Brick-and-Steel.fdx"))
    texts = [line.text for line in lines]
    # Styled runs join into one line.
    assert "From what seems like only INCHES AWAY.  Steel's face FILLS the Leupold Mark 4 scope." in texts
    # A paragraph with explicit line breaks gives one line each; only the first has a gap.
    start = texts.index("And then there's a long beat.")
    assert texts[start + 1 : start + 3] == ["Longer than is funny.", "Long enough to be depressing."]
    assert [line.gap_before for line in lines[start : start + 3]] == [1, 0, 0]
    assert lines[start + 1].y0 == lines[start].y0 + 1
    # Both speeches nested in <DualDialogue> are read, cue then line.
    i = texts.index("Screw retirement.")
    assert [(l.text, l.imported_label) for l in lines[i - 1 : i + 3]] == [
        ("STEEL", "character"),
        ("Screw retirement.", "dialogue"),
        ("BRICK", "character"),
        ("Screw retirement.", "dialogue"),
    ]
    centered = lines[texts.index("THE END")]
    assert centered.imported_label == "action" and centered.indent > 30


SYNTHETIC = """<?xml version="1.0" encoding="UTF-8" standalone="no" ?>
<FinalDraft DocumentType="Script" Template="No" Version="4">
  <Content>
    <Paragraph Type="Cast List"><Text>TIM, a boy</Text></Paragraph>
    <Paragraph Number="1" Type="Scene Heading"><SceneProperties Length="1"/><Text>INT. ATTIC - DAY</Text></Paragraph>
    <Paragraph Type="General"><Text>Dust.</Text></Paragraph>
    <Paragraph Type="Shot"><Text>CLOSE ON THE WATCH</Text></Paragraph>
    <Paragraph StartsNewPage="Yes" Type="Character"><Text>TIM</Text></Paragraph>
    <Paragraph Type="Parenthetical"><Text>(awed)</Text></Paragraph>
    <Paragraph Type="Dialogue"><Text Style="Bold">Whoa</Text><Text>.</Text></Paragraph>
    <Paragraph Type="Transition"><Text>CUT TO:</Text></Paragraph>
    <Paragraph Type="Custom Thing"><Text>???</Text></Paragraph>
    <Paragraph Type="Action"><Text>   </Text></Paragraph>
  </Content>
  <HeaderAndFooter><Header><Paragraph Type="Action"><Text>HEADER TEXT</Text></Paragraph></Header></HeaderAndFooter>
  <TitlePage><Content>
    <Paragraph Alignment="Center" Type="Action"><Text>TIM TIME</Text></Paragraph>
    <Paragraph Type="Action"><Text>Draft 2</Text></Paragraph>
  </Content></TitlePage>
</FinalDraft>
"""


def test_types_title_page_pages_and_what_is_not_script():
    lines = parse_fdx(SYNTHETIC.encode())
    assert [(l.text, l.imported_label, l.page) for l in lines] == [
        ("TIM TIME", "other", 1),
        ("Draft 2", "other", 1),
        ("TIM, a boy", "other", 1),
        ("INT. ATTIC - DAY", "scene_heading", 1),
        ("Dust.", "action", 1),
        ("CLOSE ON THE WATCH", "action", 1),
        ("TIM", "character", 2),
        ("(awed)", "parenthetical", 2),
        ("Whoa.", "dialogue", 2),
        ("CUT TO:", "transition", 2),
        ("???", "other", 2),
    ]
    by_text = {l.text: l for l in lines}
    assert (by_text["TIM"].indent, by_text["(awed)"].indent, by_text["Whoa."].indent) == (37, 31, 25)
    assert by_text["CUT TO:"].x1 == 75 and by_text["TIM"].y0 == 1
    assert parse_fdx(SYNTHETIC) == lines  # str input works too


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (
            b"<FinalDraft><Content><Paragraph Type='Action'><Text>Hi</Text></Content></FinalDraft>",
            "not valid Final Draft XML",
        ),
        (b"<html><body>Hi</body></html>", "not a Final Draft script"),
        (b"<FinalDraft><Content></Content></FinalDraft>", "no script paragraphs"),
        (
            (
                b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]>'
                b"<FinalDraft><Content><Paragraph Type='Action'><Text>&lol2;</Text></Paragraph></Content></FinalDraft>"
            ),
            "refusing it for safety",
        ),
    ],
)
def test_bad_fdx_raises_an_error_naming_the_file(tmp_path, data, message):
    path = tmp_path / "broken.fdx"
    path.write_bytes(data)
    with pytest.raises(FdxFormatError, match=message) as info:
        read_fdx_file(path)
    assert "broken.fdx" in str(info.value)
