"""Feature set 5 (`models.lines.reading_cues`): the cues a reader uses where the zero-shot model slipped
(issue 26), on lines as screenplays write them; and models saved with feature set 4 still load."""

import json

import numpy as np
import pandas as pd

from models.lines.classifier import LineClassifier, fit_base
from models.lines.error_kinds import bracket_runs, count_error_kinds, kinds_report
from models.lines.features import FeatureConfig, dense_feature_names, dense_features
from models.lines.reading_cues import READING_CUE_FEATURES, cue_shaped

from test_line_classifier import FAST, make_scripts

# Column of each role in a text screenplay (leading spaces), as MovieParse's scripts set them.
INDENT = {"heading": 15, "action": 15, "cue": 37, "paren": 31, "dialogue": 25, "transition": 60, "title": 30,
          "page": 70}


def frame(rows, script_id="s") -> pd.DataFrame:
    """(text, role, blank lines before, page) → the classifier's line frame."""
    out = []
    for i, (text, role, gap, page) in enumerate(rows):
        indent = INDENT[role]
        out.append(dict(script_id=script_id, line_no=i + 1, page=page, text=text, indent=float(indent),
                        gap_before=float(gap), x0=float(indent), y0=float(i), x1=float(indent + len(text)),
                        y1=float(i + 1)))
    return pd.DataFrame(out)


def cues(X: pd.DataFrame) -> dict[str, np.ndarray]:
    D = dense_features(X)
    names = dense_feature_names()
    return {name: D[:, names.index(name)] for name in READING_CUE_FEATURES + ("paren_depth",)}


# A file that starts mid-scene (actors' sides): speech within the first lines.
MID_SCENE = [
    ("toward the door. She stops, turns back.", "action", 0, 4),
    ("DANA", "cue", 1, 4),
    ("You kept the keys.", "dialogue", 0, 4),
    ("WES", "cue", 1, 4),
    ("I kept everything.", "dialogue", 0, 4),
    ("He holds them out. She doesn't take them.", "action", 1, 4),
]
# A title page, then the script.
TITLE_PAGE = [
    ("NIGHT SHIFT", "title", 0, 1),
    ("Written by", "title", 2, 1),
    ("Jo Marsh", "title", 1, 1),
    ("Second Draft", "title", 6, 1),
    ("INT. GARAGE - NIGHT", "heading", 0, 2),
    ("Rain on the roof. DANA slides out from under a truck.", "action", 1, 2),
    ("DANA", "cue", 1, 2),
    ("Who's there?", "dialogue", 0, 2),
]


def test_a_title_page_has_no_speech_ahead_a_mid_scene_start_has():
    mid, title = cues(frame(MID_SCENE)), cues(frame(TITLE_PAGE))
    assert mid["lines_to_alternation"][0] == 1  # speech starts on the next line
    assert mid["alternations_ahead"][0] == 2
    assert mid["first_page_alternations"][0] > 0
    assert title["lines_to_alternation"][0] == 6  # nothing but the title page before the first cue
    assert title["before_first_alternation"][:6].tolist() == [1] * 6
    assert title["first_page_alternations"][0] == 0  # no cue/speech on the title page itself


def test_a_parenthetical_wrapped_over_a_page_break_stays_open():
    rows = [
        ("DANA", "cue", 1, 7),
        ("(quietly, not looking at him, the keys", "paren", 0, 7),
        ("still in her hand)", "paren", 0, 8),  # the next page
        ("Go home, Wes.", "dialogue", 0, 8),
    ]
    c = cues(frame(rows))
    assert c["paren_depth"][2] == 0  # feature set 3's depth starts afresh on the new page
    assert c["paren_depth_carry"].tolist() == [0, 0, 1, 0]
    assert c["paren_open_indent_diff"][2] == 0  # at the column the bracket opened at
    assert c["opens_unclosed"].tolist() == [0, 1, 0, 0]


def test_speech_after_a_closing_bracket_and_nested_brackets():
    rows = [("WES", "cue", 1, 1), ("(beat) You heard me.", "dialogue", 0, 1),
            ("(to Dana (and the room))", "paren", 0, 1)]
    c = cues(frame(rows))
    assert c["close_then_text"].tolist() == [0, 1, 0]
    assert c["nested_paren"].tolist() == [0, 0, 1]


def test_a_numbered_heading_written_as_prose_shows_its_heading_cues():
    rows = [("12. END OF THE SHIFT. INSIDE THE GARAGE. INT. NIGHT.", "heading", 1, 1),
            ("WIDE ON THE LOT, EXT. THE GATES", "heading", 1, 1),
            ("Dana walks inside and shuts the door for the night.", "action", 1, 1)]
    c = cues(frame(rows))
    assert c["int_ext_anywhere"].tolist() == [1, 1, 0]
    assert c["time_word_caps"].tolist() == [1, 0, 0]
    assert c["lead_scene_number"].tolist() == [1, 0, 0]
    assert c["heading_cues"][0] == 4 and c["heading_cues"][1] == 2 and c["heading_cues"][2] == 0


def test_transitions_in_any_case():
    rows = [("Cut to.", "action", 1, 1), ("CUT TO:", "transition", 1, 1), ("dissolve to:", "transition", 1, 1),
            ("She goes back to.", "action", 1, 1), ("He walks over to the window and waits.", "action", 1, 1)]
    c = cues(frame(rows))
    assert c["to_punct_end"].tolist() == [1, 1, 1, 1, 0]
    assert c["transition_phrase"].tolist() == [1, 1, 1, 0, 0]  # the verb tells "She goes back to." apart


def test_cue_shape_short_names_with_initials_at_the_cue_column():
    assert cue_shaped("ANNA K.") and cue_shaped("DANA (V.O.)") and cue_shaped("MR. WES HOLT")
    assert not cue_shaped("INT. GARAGE - NIGHT") and not cue_shaped("CUT TO:") and not cue_shaped("Dana")
    assert not cue_shaped("THE TRUCK ROLLS OUT OF THE GARAGE")
    rows = [("ANNA K.", "cue", 1, 1), ("Where were you?", "dialogue", 0, 1), ("DANA", "cue", 1, 1),
            ("Out.", "dialogue", 0, 1), ("WES", "cue", 1, 1), ("Late again.", "dialogue", 0, 1),
            ("THE TRUCK ROLLS OUT", "action", 1, 1), ("Rain.", "action", 1, 1)]
    c = cues(frame(rows))
    assert c["cue_shape"].tolist() == [2, 0, 2, 0, 2, 0, 1, 0]  # 2: speech right under it
    assert c["name_initial"].tolist() == [1, 0, 0, 0, 0, 0, 0, 0]
    assert c["cue_column_dist"][0] == 0 and c["cue_column_dist"][6] == INDENT["cue"] - INDENT["action"]


def test_models_of_feature_set_4_still_load_and_predict(tmp_path):
    X, y = make_scripts(n_scripts=4, repeats=2)
    old = FeatureConfig.from_dict({**FeatureConfig().to_dict(), "feature_set": 4, "exclude": []})
    assert set(READING_CUE_FEATURES) <= set(old.exclude)
    model = fit_base(X, y, config=FAST.__class__(**{**FAST.__dict__, "features": old}), n_jobs=1)
    assert not set(READING_CUE_FEATURES) & set(model.stage1_names_)
    model.save(tmp_path / "fs4")
    meta = json.loads((tmp_path / "fs4" / "config.json").read_text())
    meta["config"]["features"].pop("exclude")  # as written before feature set 5 existed
    (tmp_path / "fs4" / "config.json").write_text(json.dumps(meta))
    loaded = LineClassifier.load(tmp_path / "fs4", n_jobs=1)
    assert loaded.config.features.feature_set == 4
    assert (loaded.predict(X) == model.predict(X)).all()
    new = fit_base(X, y, config=FAST, n_jobs=1)
    assert set(READING_CUE_FEATURES) <= set(new.stage1_names_)


def test_error_kinds_name_each_slip_once():
    texts = ["toward the door.", "DANA", "(quietly, the keys", "still in her hand)", "Go home.",
             "12. END OF THE SHIFT. INT. NIGHT.", "Cut to.", "ANNA K.", "Hello."]
    truth = ["action", "character", "parenthetical", "parenthetical", "dialogue", "scene_heading", "transition",
             "character", None]
    pred = ["other", "character", "parenthetical", "dialogue", "dialogue", "action", "action", "other", "action"]
    assert bracket_runs(texts).tolist() == [False, False, True, True, False, False, False, False, False]
    report = kinds_report(count_error_kinds(texts, truth, pred))
    assert report == {"start_of_file_other": 2, "multiline_parenthetical": 1, "prose_heading": 1,
                      "lowercase_transition": 1, "short_cue": 0, "other_kind": 0, "errors": 5}
    # the same cue far from the file's start is a short cue, not a start-of-file slip
    late = kinds_report(count_error_kinds(["ANNA K."], ["character"], ["other"], offset=100))
    assert late["short_cue"] == 1 and late["start_of_file_other"] == 0
