from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from labeling.corpus.sources import (
    LINE_COLUMNS,
    CorpusUnavailableError,
    concat_scripts,
    default_data_dir,
    excerpt_variant,
    layout_variant,
    load_movieparse,
    project_fountain_labels,
    repeated_cues,
    running_headers,
    with_layout_variants,
    LabeledScript,
)

DATA = default_data_dir()
needs_data = pytest.mark.skipif(
    not (DATA / "movieparse" / "gold_lines.csv").exists(),
    reason=f"shared screenplay data not found at {DATA} (set SCRIPTLABEL_SHARED_DATA)",
)


def test_default_data_dir_honours_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("SCRIPTLABEL_SHARED_DATA", str(tmp_path))
    assert default_data_dir() == tmp_path
    monkeypatch.delenv("SCRIPTLABEL_SHARED_DATA")
    assert default_data_dir() == Path(__file__).resolve().parents[2] / "shared" / "data"


def test_missing_data_raises_a_named_error(tmp_path):
    with pytest.raises(CorpusUnavailableError, match="SCRIPTLABEL_SHARED_DATA"):
        load_movieparse(tmp_path)


def test_projection_labels_pdf_lines_from_fountain_words():
    fountain = [
        ("INT. HOUSE - DAY", "scene_heading"),
        ("Mara opens the door and steps into the hall, shaking off the rain.", "action"),
        ("MARA", "character"),
        ("Anyone home?", "dialogue"),
    ]
    pdf_lines = [
        "12 INT. HOUSE - DAY 12",  # scene numbers are extra words, the rest matches
        "Mara opens the door and steps into",
        "the hall, shaking off the rain.",
        "(CONTINUED)",
        "MARA",
        "Anyone home?",
        "2.",
    ]
    projection = project_fountain_labels(pdf_lines, fountain)
    assert list(projection.labels) == ["scene_heading", "action", "action", "other", "character", "dialogue", "other"]
    assert list(projection.matched) == [False, True, True, False, True, True, False]
    assert projection.match_rate == pytest.approx(4 / 7)


def test_a_cue_repeated_after_a_page_break_is_a_cue():
    fountain = [
        ("MARA", "character"),
        ("I kept every letter you never sent, and I read them all twice.", "dialogue"),
        ("She turns away.", "action"),
    ]
    pdf_lines = ["MARA", "I kept every letter you never", "(MORE)", "7.", "MARA (CONT'D)",
                 "sent, and I read them all twice.", "She turns away.", "JONAS (CONT'D)", "8."]
    projected = project_fountain_labels(pdf_lines, fountain).labels
    assert projected[4] == "other"  # the repeated cue has no Fountain line
    labels = repeated_cues(pdf_lines, projected)
    assert list(labels) == ["character", "dialogue", "other", "other", "character", "dialogue", "action",
                            "other", "other"]  # JONAS never speaks here, and no dialogue follows: not a cue


def test_projection_folds_quotes_and_case():
    projection = project_fountain_labels(["DON’T MOVE."], [("Don't move.", "dialogue")])
    assert projection.labels[0] == "dialogue" and projection.matched[0]


def _toy_script() -> LabeledScript:
    rows = [
        ("INT. ROOM - DAY", 15, 1.0, "scene_heading"),
        ("Someone waits.", 15, 1.0, "action"),
        ("ANNA", 37, 1.0, "character"),
        ("Who is there? Tell me now,", 25, 0.0, "dialogue"),
        ("or I call the police.", 25, 0.0, "dialogue"),
        ("Silence.", 15, 1.0, "action"),
        ("Nobody answers her at all, not a sound, not a breath, nothing", 15, 1.0, "action"),
        ("in the whole long house.", 15, 0.0, "action"),
        ("The clock ticks on the wall above the cold and empty fireplace.", 15, 1.0, "action"),
        ("She sits down again on the hard chair and waits for the night.", 15, 1.0, "action"),
    ]
    frame = pd.DataFrame(
        [dict(script_id="toy", line_no=i + 1, page=1, text=t, indent=float(ind), gap_before=g, x0=float(ind),
              y0=float(i), x1=float(ind + len(t)), y1=float(i + 1)) for i, (t, ind, g, _) in enumerate(rows)],
        columns=list(LINE_COLUMNS),
    )
    return LabeledScript("toy", "test", frame, np.array([r[3] for r in rows], dtype=object))


def test_layout_variants_keep_labels_and_group():
    script = _toy_script()
    flush, labels = layout_variant(script.lines, script.labels, "flush_nogap")
    assert (flush["indent"] == 15).all() and (flush["gap_before"].iloc[1:] == 0).all()
    assert list(labels) == list(script.labels)
    assert set(flush["group"]) == {"toy"} and set(flush["script_id"]) == {"toy#flush_nogap"}
    wide, wide_labels = layout_variant(script.lines, script.labels, "widedlg")
    # the two dialogue lines re-wrap into one line as wide as the action
    assert list(wide_labels).count("dialogue") == 1
    assert "Who is there? Tell me now, or I call the police." in list(wide["text"])
    X, y = with_layout_variants([script], ("flush",))
    assert len(X) == 2 * len(script.lines) and len(y) == len(X)
    with pytest.raises(ValueError, match="unknown layout variant"):
        layout_variant(script.lines, script.labels, "sideways")


def _scene_rows(repeats: int) -> tuple[pd.DataFrame, np.ndarray]:
    scene = [("INT. GARAGE - NIGHT", "scene_heading", 15, 1), ("Rain on the roof.", "action", 15, 1),
             ("DANA", "character", 37, 1), ("(quietly, not looking at him)", "parenthetical", 31, 0),
             ("Go home, Wes.", "dialogue", 25, 0), ("WES", "character", 37, 1), ("(beat)", "parenthetical", 31, 0),
             ("No.", "dialogue", 25, 0), ("CUT TO:", "transition", 60, 1)]
    rows, labels = [], []
    for r in range(repeats):
        for text, label, indent, gap in scene:
            rows.append(dict(script_id="toy", line_no=len(rows) + 1, page=1 + len(rows) // 50, text=text,
                             indent=float(indent), gap_before=float(gap), x0=float(indent), y0=float(len(rows)),
                             x1=float(indent + len(text)), y1=float(len(rows) + 1)))
            labels.append(label if 3 <= r else None)  # a labeled window after three unlabeled scenes
    return pd.DataFrame(rows), np.array(labels, dtype=object)


def test_excerpt_variant_starts_mid_file_with_lower_case_transitions_and_wrapped_parentheticals():
    X, y = _scene_rows(repeats=40)
    seen_cut, seen_lower, seen_wrapped, seen_run_in = set(), 0, 0, 0
    for seed in range(6):
        out, labels = excerpt_variant(X, y, seed=seed)
        assert len(out) == len(labels) and list(out["line_no"]) == list(range(1, len(out) + 1))
        seen_cut.add(out["text"].iloc[0])
        texts = out["text"].tolist()
        seen_lower += sum(t in ("Cut to:", "Cut to.") for t in texts)
        # a wrapped parenthetical: its two halves on consecutive lines, both labeled parenthetical
        seen_wrapped += sum(a == "(quietly, not" and b == "looking at him)" and la == lb == "parenthetical"
                            for a, b, la, lb in zip(texts, texts[1:], labels, labels[1:]))
        seen_run_in += sum(t == "(beat) No." and lab == "dialogue" for t, lab in zip(texts, labels))
        assert "CUT TO:" in texts or seen_lower  # only some are lower-cased
        first_labeled = next(i for i, lab in enumerate(labels) if lab is not None)
        assert first_labeled <= 10  # cut at most ten lines before the labeled window, maybe inside it
    assert len(seen_cut) > 1  # the cut moves with the seed
    assert seen_lower and seen_wrapped and seen_run_in
    X2, y2 = with_layout_variants([LabeledScript("toy", "movieparse", X, y)], ("excerpt",))
    assert set(X2["group"]) == {"toy"} and set(X2["script_id"]) == {"toy", "toy#excerpt"}


@needs_data
def test_movieparse_gold_aligns_with_the_parsed_scripts():
    scripts = load_movieparse(movies=["up", "shawshank_redemption_the"])
    assert [s.script_id for s in scripts] == ["movieparse/shawshank_redemption_the", "movieparse/up"]
    for script in scripts:
        assert list(script.lines.columns) == list(LINE_COLUMNS)
        assert 240 <= script.n_labeled <= 260  # the gold window's non-blank lines
        assert len(script.lines) > 10 * script.n_labeled  # whole script as context
        # tabs in the gold text are expanded in the parsed lines; nothing else may differ
        assert not any("no parsed line" in note for note in script.notes)
        # how many of the three annotators gave the majority label: 2 or 3 on gold lines, -1 elsewhere
        # (a line with no 2-of-3 majority is O by the data's rule and may have 0 or 1)
        labeled = np.array([label is not None for label in script.labels])
        assert set(np.unique(script.agreement[~labeled])) == {-1}
        assert set(np.unique(script.agreement[labeled])) <= {0, 1, 2, 3}
        assert (script.agreement[labeled] == 3).mean() > 0.9
    up = scripts[1]
    labeled = up.lines[np.array([label is not None for label in up.labels])]
    cues = labeled[np.array([label == "character" for label in up.labels if label is not None])]
    assert (cues["indent"] > 25).all()
    X, y = concat_scripts(scripts)
    assert len(X) == len(y) == sum(len(s.lines) for s in scripts)


@needs_data
@pytest.mark.slow
def test_studio_pdf_projection_match_rates():
    import labeling.ingest.formats.fountain  # noqa: F401 (the project's own modules: an import error fails)
    import labeling.ingest.pdf.textlayer  # noqa: F401
    from labeling.corpus.sources import load_studio_pdfs

    scripts = load_studio_pdfs(slugs=["breaking-bad-101-pilot", "big-fish"])
    rates = {s.script_id.split("/")[-1]: s.match_rate for s in scripts}
    assert rates["breaking-bad-101-pilot"] > 0.9
    flagged = next(s for s in scripts if s.script_id.endswith("big-fish"))
    assert any("low-match" in note for note in flagged.notes)
    for script in scripts:
        counts = pd.Series(script.labels).value_counts()
        assert counts.get("dialogue", 0) > 100 and counts.get("character", 0) > 50


def test_running_headers_are_found_at_the_page_edge_whatever_the_page_number():
    rows = []
    for page in range(1, 6):
        last = ["Only the gulls.", "Nobody.", "The wind.", "Go home.", "Wait."][page - 1]
        texts = ['"Lighthouse" - #101 - "Pilot" ' + f"{page}.", "MARA", "Anyone up here?", "She climbs.", "MARA", last]
        for i, text in enumerate(texts):
            rows.append(dict(script_id="s", line_no=len(rows) + 1, page=page, text=text, indent=10.0, gap_before=0.0,
                             x0=72.0, y0=40.0 + 12 * i + (0 if i == 0 else page), x1=300.0, y1=50.0 + 12 * i))
    frame = pd.DataFrame(rows)
    mask = running_headers(frame)
    assert list(frame["text"][mask].str[:12]) == ['"Lighthouse"'] * 5
    # a cue comes back on every page too, but not at the same height; two pages are not enough to tell
    assert not running_headers(frame[frame["page"] <= 2]).any()
