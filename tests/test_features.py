import numpy as np
import pandas as pd
import pytest

from models.lines.features import (
    FeatureConfig,
    FeatureInputError,
    LAYOUT_FEATURES,
    STATE_FEATURES,
    TEXT_FEATURES,
    cue_names,
    dense_feature_names,
    dense_features,
    indent_levels,
    proba_context_features,
    proba_feature_names,
    split_margins,
)

# (text, layout role) of a tiny original scene; roles pick the indent per script below.
SCENE = [
    ("INT. LIGHTHOUSE - NIGHT", "heading"),
    ("Rain hammers the glass. MARA climbs the stairs,", "action"),
    ("a lantern swinging in her fist.", "action"),
    ("MARA", "cue"),
    ("(breathless)", "paren"),
    ("Anyone up here?", "dialogue"),
    ("OTTO (O.S.)", "cue"),
    ("Only the gulls.", "dialogue"),
    ("CUT TO:", "transition"),
    ("MARA", "cue"),
    ("Then who lit the lamp?", "dialogue"),
]
GAP_BEFORE = [0, 1, 0, 1, 0, 0, 1, 0, 1, 1, 0]


def script_frame(script_id: str, margin: float, step: float) -> pd.DataFrame:
    """The scene laid out with the given left margin and indent step (columns)."""
    offsets = {"heading": 0, "action": 0, "dialogue": 1, "paren": 1.5, "cue": 2.2, "transition": 4.5}
    rows = []
    for i, ((text, role), gap) in enumerate(zip(SCENE, GAP_BEFORE)):
        indent = margin + offsets[role] * step
        rows.append(
            dict(script_id=script_id, line_no=i + 1, page=1, text=text, indent=indent, gap_before=float(gap),
                 x0=indent, y0=float(i), x1=indent + len(text), y1=float(i + 1))
        )
    return pd.DataFrame(rows)


def column(features: np.ndarray, name: str, config: FeatureConfig = FeatureConfig()) -> np.ndarray:
    return features[:, dense_feature_names(config).index(name)]


def test_dense_shape_and_names():
    X = script_frame("a", 10, 10)
    D = dense_features(X)
    assert D.shape == (len(X), len(dense_feature_names()))
    assert D.dtype == np.float32
    assert len(set(dense_feature_names())) == len(dense_feature_names())


def test_indent_levels_map_different_margins_to_the_same_ranks():
    # Script a: margin 10, step 10 (IMSDb-like); script b: margin 1.5, step 7.2 (another layout).
    X = pd.concat([script_frame("a", 10, 10), script_frame("b", 1.5, 7.2)], ignore_index=True)
    D = dense_features(X)
    ranks = column(D, "level_rank")
    a, b = ranks[: len(SCENE)], ranks[len(SCENE):]
    assert np.array_equal(a, b)
    roles = [role for _, role in SCENE]
    assert a[roles.index("action")] == 0
    assert a[roles.index("dialogue")] == 1 and a[roles.index("cue")] == 2
    # a lone transition is no level of its own (too rare): it sits far right of its nearest one
    assert column(D, "level_dist")[roles.index("transition")] > 10
    # the cue level is the all-caps level in both scripts
    caps = column(D, "lvl_all_caps")
    assert caps[roles.index("cue")] == 1.0 and caps[len(SCENE) + roles.index("cue")] == 1.0


def test_features_do_not_leak_across_scripts_and_follow_reading_order():
    a = script_frame("a", 10, 10)
    b = script_frame("b", 0, 5)
    together = dense_features(pd.concat([a, b], ignore_index=True))
    alone = dense_features(a)
    np.testing.assert_array_equal(together[: len(a)], alone)
    shuffled = a.sample(frac=1.0, random_state=3)
    D = dense_features(shuffled)
    np.testing.assert_array_equal(D, alone[shuffled.index.to_numpy()])


def test_text_and_context_values():
    X = script_frame("a", 10, 10)
    D = dense_features(X)
    assert column(D, "scene_prefix")[0] == 1.0
    assert column(D, "to_colon")[8] == 1.0
    assert column(D, "paren_whole")[4] == 1.0
    assert column(D, "extension")[6] == 1.0
    assert column(D, "all_caps")[3] == 1.0 and column(D, "all_caps")[5] == 0.0
    # the line after a cue sees the cue's caps one line up; the first line has no neighbour
    assert column(D, "all_caps@-1")[4] == 1.0
    assert np.isnan(column(D, "all_caps@-1")[0])
    assert column(D, "gap_after")[2] == 1.0
    # MARA opens action ("MARA climbs"), so it is a cue name; "Anyone" is not
    assert "MARA" in cue_names(X["text"])
    assert column(D, "pos_in_block")[2] == 1.0 and column(D, "block_len")[1] == 2.0


def test_margin_numbers_and_revision_marks_are_split_off():
    assert split_margins("12   INT. HOUSE - DAY          12") == ("INT. HOUSE - DAY", 5, True, True)
    assert split_margins("12 INT. HOUSE - DAY 12")[0] == "INT. HOUSE - DAY"
    core, offset, left, right = split_margins("I gotta finish these                 *")
    assert core == "I gotta finish these" and right and not left and offset == 0
    assert split_margins("64.") == ("64.", 0, False, False)


def test_indent_levels_merge_nearby_columns():
    indent = np.array([10] * 20 + [11] * 5 + [25] * 10 + [37] * 8 + [60])
    levels = indent_levels(indent, tolerance=2.0, min_share=0.05)
    assert len(levels) == 3
    assert levels[0] == pytest.approx((10 * 20 + 11 * 5) / 25)


def test_older_feature_configs_still_load():
    # A config saved with the n-gram settings of the old sparse block, before the state features.
    old = FeatureConfig.from_dict({"ngram_range": [1, 4], "analyzer": "char_wb", "n_features": 262144,
                                   "context_offsets": [-2, -1, 1, 2], "feature_set": 2})
    assert not hasattr(old, "n_features")
    assert set(STATE_FEATURES) <= set(old.exclude)
    assert FeatureConfig().exclude == ()


def test_state_features_follow_an_open_parenthesis_and_the_last_cue():
    rows = [("INT. ROOM - DAY", 0, 1), ("MARA", 30, 1), ("(looking at the long", 25, 0),
            ("window, sadly)", 25, 0), ("Hello.", 20, 0), ("She goes.", 0, 1)]
    X = pd.DataFrame([dict(script_id="a", line_no=i + 1, page=1, text=t, indent=ind, gap_before=gap, x0=ind * 7.2,
                           y0=12.0 * i, x1=(ind + len(t)) * 7.2, y1=12.0 * i + 10) for i, (t, ind, gap) in enumerate(rows)])
    D = dense_features(X)
    col = {n: i for i, n in enumerate(dense_feature_names())}
    assert list(D[:, col["paren_depth"]]) == [0, 0, 0, 1, 0, 0]  # the continuation line is inside "(...)"
    assert list(D[:, col["paren_depth_after"]]) == [0, 0, 1, 0, 0, 0]
    assert list(D[:, col["since_cue"]]) == [50, 50, 1, 2, 3, 4]
    assert list(D[:, col["since_cue_in_block"]]) == [-1, -1, 1, 2, 3, -1]  # a gap ends the block
    assert list(D[:, col["before_first_scene"]]) == [1, 0, 0, 0, 0, 0]


def test_proba_context_features():
    X = script_frame("a", 10, 10)
    proba = np.tile(np.eye(7, dtype=np.float32)[1], (len(X), 1))
    proba[3] = np.eye(7)[2]
    Q = proba_context_features(X, proba)
    names = proba_feature_names()
    assert Q.shape == (len(X), len(names))
    assert Q[4, names.index("p_character@-1")] == 1.0
    # line 9 repeats line 3's text (MARA): its same-text mean is line 3's probabilities
    assert Q[9, names.index("p_character@same_text")] == 1.0
    assert np.isnan(Q[0, names.index("p_action@-1")])
    with pytest.raises(FeatureInputError, match="probabilities"):
        proba_context_features(X, proba[:3])


def test_missing_columns_raise_a_named_error():
    with pytest.raises(FeatureInputError, match="gap_before"):
        dense_features(pd.DataFrame({"script_id": [1], "line_no": [1], "text": ["x"]}))


def test_feature_tables_are_consistent():
    assert len(TEXT_FEATURES) == len(set(TEXT_FEATURES))
    assert len(LAYOUT_FEATURES) == len(set(LAYOUT_FEATURES))


def paged_script(pages: int = 6) -> pd.DataFrame:
    """The scene once per page, under a running header whose page number changes."""
    frames = []
    for p in range(1, pages + 1):
        page = script_frame("paged", 10, 10)
        header = pd.DataFrame([dict(script_id="paged", line_no=0, page=p, text=f'LIGHTHOUSE "PILOT" DRAFT {p}.',
                                    indent=40.0, gap_before=0.0, x0=40.0, y0=-3.0, x1=70.0, y1=-2.0)])
        page["page"] = p
        tail = page.iloc[[1, 2]].assign(y0=[11.0, 12.0], y1=[12.0, 13.0])  # two lines of action end the page
        frames.append(pd.concat([header, page, tail], ignore_index=True))
    X = pd.concat(frames, ignore_index=True)
    X["line_no"] = np.arange(1, len(X) + 1)
    return X


def test_running_header_is_told_apart_from_a_repeated_cue():
    X = paged_script()
    D = dense_features(X)
    share = column(D, "template_edge_share")
    header = X["text"].str.startswith("LIGHTHOUSE").to_numpy()
    cue = (X["text"] == "MARA").to_numpy()
    assert np.all(share[header] == 1.0)  # at the top of every page
    assert np.all(share[cue] < 0.5)  # as frequent, but not at the page's edge
    assert np.all(column(D, "template_pos_spread")[header] == 0.0)  # always at the same height
    assert np.all(column(D, "page_rank")[header] == 0) and np.all(column(D, "page_rank")[~header] >= 1)


def test_models_saved_before_the_page_features_keep_their_feature_list():
    old = FeatureConfig.from_dict({"ngram_range": [1, 4]})  # a saved config from feature set 1
    assert old.feature_set == 1
    assert "template_edge_share" in old.exclude
    assert FeatureConfig.from_dict(FeatureConfig().to_dict()) == FeatureConfig()


def right_aligned_pages(pages: int = 4) -> pd.DataFrame:
    """Pages with a page number in the top right corner and a two-line transition set flush right."""
    rows = []
    for p in range(1, pages + 1):
        body = [(f"{p}.", 67.0), ("Rain hammers the glass and the lamp swings on its hook.", 10.0),
                ("MARA", 32.0), ("Anyone up here? Anyone at all?", 20.0),
                ("The stairs creak under her boots, one at a time, slowly.", 10.0)]
        if p % 2:
            body += [("CUT TO: THE HARBOUR AT LOW TIDE", 42.0), ("AT DAWN", 60.0)]
        body += [("OTTO", 32.0), ("Only the gulls.", 20.0)]
        for i, (text, x0) in enumerate(body):
            x1 = 70.0 if x0 in (67.0, 42.0, 60.0) or x0 == 10.0 else x0 + len(text)
            rows.append(dict(script_id="r", line_no=0, page=p, text=text, indent=x0, gap_before=float(i > 0),
                             x0=x0, y0=float(i * 2), x1=x1, y1=float(i * 2 + 1)))
    X = pd.DataFrame(rows)
    X["line_no"] = np.arange(1, len(X) + 1)
    return X


def test_right_aligned_text_leaves_out_page_numbers():
    X = right_aligned_pages()
    D = dense_features(X)
    transition = X["text"].isin(["CUT TO: THE HARBOUR AT LOW TIDE", "AT DAWN"]).to_numpy()
    number = X["text"].str.fullmatch(r"\d+\.").to_numpy()
    assert np.all(column(D, "right_aligned")[number] == 1)  # flush right too: the old feature cannot tell them apart
    assert np.all(column(D, "right_text")[transition] == 1)
    assert np.all(column(D, "right_text")[~transition] == 0)
    assert np.all(column(D, "block_right_text_share")[transition] == 1)


def test_models_saved_before_the_right_text_features_leave_them_out():
    old = FeatureConfig.from_dict({"context_offsets": [-2, -1, 1, 2], "feature_set": 3})
    assert "right_text" in old.exclude and "block_right_text_share" in old.exclude
    assert "right_aligned" not in old.exclude
