"""A project's label scheme (store/scheme.py, labeling/scheme.py, `scriptlabel scheme …`): merging and adding
classes never loses a label, every path that takes a label speaks the scheme, and only leads change it."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from labeling import scheme as scheme_api
from labeling.accounts.access import Identity, PermissionDeniedError
from store import labels as label_store
from store.db import open_db
from store.scheme import SchemeError, load_scheme
from store.types import LABELS, UnknownLabelError

LEAD = Identity("lea", "lead", "local")
ANNOTATOR = Identity("ana", "annotator", "local")


def _effective(db, script_id) -> dict[int, str]:
    return label_store.effective_labels(db, script_id).set_index("line_id")["label"].to_dict()


def test_a_new_database_has_the_full_scheme_with_the_label_pages_keys(db):
    scheme = load_scheme(db)
    assert scheme.names == LABELS and scheme.is_full
    assert scheme.keys == {"h": "scene_heading", "a": "action", "c": "character", "d": "dialogue",
                           "p": "parenthetical", "t": "transition", "o": "other"}


def test_merging_keeps_every_label_and_unmerging_restores_them(db, text_script):
    lines = label_store.effective_labels(db, text_script)
    paren, dialogue = [int(i) for i in lines["line_id"][:2]]
    label_store.add_label(db, paren, "parenthetical", annotator="ana")
    label_store.add_label(db, dialogue, "dialogue", annotator="ana")
    events_before = label_store.label_history(db, paren) + label_store.label_history(db, dialogue)

    scheme = scheme_api.merge(db, LEAD, ["parenthetical"], into="dialogue")
    assert "parenthetical" not in scheme.names and scheme.get("dialogue").members == ("dialogue", "parenthetical")
    assert _effective(db, text_script)[paren] == "dialogue"  # reads as the class it is merged into
    assert label_store.effective_labels(db, text_script, in_scheme=False).set_index("line_id")["label"][paren] \
        == "parenthetical"  # sequences and complexity still read the built-in label

    scheme = scheme_api.unmerge(db, LEAD, ["parenthetical"])
    assert scheme.get("parenthetical").key == "p"
    assert _effective(db, text_script)[paren] == "parenthetical"
    # nothing was rewritten: the same events, as pressed
    assert label_store.label_history(db, paren) + label_store.label_history(db, dialogue) == events_before


def test_the_seed_scheme_reads_labels_and_suggestions_as_s_c_d_o(db, text_script):
    import app_builders

    app_builders.predict(db, text_script, label="parenthetical", confidence=0.5)
    line = int(label_store.effective_labels(db, text_script)["line_id"].iloc[3])
    label_store.add_label(db, line, "transition", annotator="ana")
    scheme_api.use_preset(db, LEAD, "seed")
    frame = label_store.effective_labels(db, text_script).set_index("line_id")
    assert frame.at[line, "label"] == "S"
    model = frame[frame["label_source"] == "model"]
    # a merged class's probability is the sum of its members': dialogue + parenthetical
    assert set(model["suggestion"]) == {"D"}
    assert model["suggestion_confidence"].round(4).eq(round(0.5 + 0.5 / 6, 4)).all()
    scheme_api.use_preset(db, LEAD, "full")
    assert label_store.effective_labels(db, text_script).set_index("line_id").at[line, "label"] == "transition"


def test_labels_accept_the_schemes_classes_and_refuse_unknown_names_listing_them(db, text_script):
    line = int(label_store.effective_labels(db, text_script)["line_id"].iloc[0])
    with pytest.raises(UnknownLabelError, match="unknown label 'shot': use one of scene_heading, action"):
        label_store.add_label(db, line, "shot")
    scheme_api.add_class(db, LEAD, "shot", key="k")
    label_store.add_label(db, line, "SHOT", annotator="ana")  # names are matched without case, stored as spelled
    assert label_store.label_history(db, line)[-1]["label"] == "shot"
    assert _effective(db, text_script)[line] == "shot"


def test_keys_and_names_are_checked_and_a_class_with_labels_cannot_be_removed(db, text_script):
    with pytest.raises(SchemeError, match="taken by the Label page"):
        scheme_api.add_class(db, LEAD, "shot", key="s")  # s skips a line
    with pytest.raises(SchemeError, match="already labels character"):
        scheme_api.add_class(db, LEAD, "shot", key="c")
    with pytest.raises(SchemeError, match="one lower-case letter or digit"):
        scheme_api.add_class(db, LEAD, "shot", key="kk")
    with pytest.raises(SchemeError, match="letter then letters"):
        scheme_api.add_class(db, LEAD, "act break", key="k")
    with pytest.raises(SchemeError, match="give its key with --key"):
        scheme_api.merge(db, LEAD, ["action"], into="S")
    scheme_api.add_class(db, LEAD, "act_break", key="b")
    line = int(label_store.effective_labels(db, text_script)["line_id"].iloc[0])
    label_store.add_label(db, line, "act_break", annotator="ana")
    with pytest.raises(SchemeError, match="carries 1 label"):
        scheme_api.remove_class(db, LEAD, "act_break")
    with pytest.raises(SchemeError, match="built-in label"):
        scheme_api.remove_class(db, LEAD, "action")
    scheme_api.add_class(db, LEAD, "lyrics", key="y")
    assert "lyrics" not in scheme_api.remove_class(db, LEAD, "lyrics").names
    assert "act_break" in load_scheme(db).names


def test_scheme_changes_are_for_leads_and_audited_with_before_and_after(db):
    with pytest.raises(PermissionDeniedError):
        scheme_api.add_class(db, ANNOTATOR, "shot", key="k")
    assert load_scheme(db).is_full
    scheme_api.merge(db, LEAD, ["scene_heading", "action", "transition"], into="S", key="z")
    [record] = [r for r in db.query("SELECT * FROM audit_log WHERE action LIKE 'scheme.%'")]
    detail = json.loads(record["detail"])
    assert record["actor"] == "lea" and record["action"] == "scheme.merge"
    assert [c["name"] for c in detail["before"]["classes"]] == list(LABELS)
    assert [c["name"] for c in detail["after"]["classes"]] == ["character", "dialogue", "parenthetical", "other",
                                                                "S"]
    # the same change again changes nothing and records nothing
    scheme_api.merge(db, LEAD, ["action"], into="S")
    assert db.execute("SELECT COUNT(*) FROM audit_log WHERE action LIKE 'scheme.%'").fetchone()[0] == 1


# --- the command line ----------------------------------------------------------------------------

def test_cli_scheme_commands_print_the_scheme_and_errors_are_one_line(cli, tmp_path):
    from conftest import SAMPLE_DIR

    [script] = cli.json_lines("ingest", str(SAMPLE_DIR / "tim_time.fountain"))
    [shown] = cli.json_lines("scheme", "show")
    assert shown["full"] and shown["keys"]["h"] == "scene_heading" and not shown["retrain_needed"]
    [seed] = cli.json_lines("scheme", "use", "seed")
    assert seed["keys"] == {"a": "S", "c": "C", "d": "D", "o": "O"}
    assert seed["retrain_needed"]  # the suggestions were made over the seven labels (read through S/C/D/O)
    [added] = cli.json_lines("scheme", "add", "shot", "--key", "k", "--display", "shot line")
    assert added["classes"][-1] == {"name": "shot", "key": "k", "display": "shot line", "merges": [], "new": True}
    [unmerged] = cli.json_lines("scheme", "unmerge", "parenthetical")
    assert unmerged["keys"]["p"] == "parenthetical"
    [merged] = cli.json_lines("scheme", "merge", "parenthetical", "--into", "D")
    assert "p" not in merged["keys"]
    bad = cli("scheme", "add", "x", "--key", "u")
    assert bad.exit_code == 1 and bad.stderr.count("\n") == 1 and "taken by the Label page" in bad.stderr
    # `label` takes the scheme's classes (and built-in labels) and refuses anything else, naming the classes
    line_id = "5"
    assert cli.json_lines("label", line_id, "shot")[0]["label"] == "shot"
    assert cli.json_lines("label", line_id, "D")[0]["label"] == "D"
    wrong = cli("label", line_id, "villain")
    assert wrong.exit_code == 1 and wrong.stderr.strip() == \
        "error: unknown label 'villain': use one of S, C, D, O, shot"
    db = open_db(cli.db_file)
    assert [r["label"] for r in label_store.label_history(db, int(line_id)) if r["source"] == "human"] == ["shot", "D"]
    assert script["lines"] > 0


def test_exports_and_imports_speak_the_scheme_and_round_trip(cli, tmp_path):
    from conftest import SAMPLE_DIR

    cli.json_lines("ingest", str(SAMPLE_DIR / "tim_time.fountain"))
    cli.json_lines("scheme", "use", "seed")
    cli.json_lines("scheme", "add", "sound", "--key", "k")
    db = open_db(cli.db_file)
    click_lines = [int(r[0]) for r in db.execute("SELECT line_id FROM lines WHERE text = 'CLICK.'")]
    for line_id in click_lines[:3]:
        cli.json_lines("label", str(line_id), "sound", "--annotator", "ana")
    out = tmp_path / "project.csv"
    cli.json_lines("export", "--format", "csv", "--out", str(out))
    frame = pd.read_csv(out, keep_default_na=False)
    assert set(frame["label"]) == {"S", "C", "D", "O", "sound"}  # the project's classes
    assert (frame.set_index("line_id").loc[click_lines[:3], "label"] == "sound").all()
    seed = tmp_path / "seed.csv"
    cli.json_lines("export", "--format", "csv", "--out", str(seed), "--scheme", "seed")
    assert set(pd.read_csv(seed, keep_default_na=False)["label"]) == {"S", "C", "D", "O", "sound"}
    fountain = cli("export", "--format", "fountain", "--script", "1", "--out", str(tmp_path / "x.fountain"))
    assert fountain.exit_code == 1 and "own class sound: export CSV" in fountain.stderr  # no element for it
    full = tmp_path / "full.csv"
    cli.json_lines("export", "--format", "csv", "--out", str(full), "--scheme", "full")
    assert set(pd.read_csv(full, keep_default_na=False)["label"]) == set(LABELS) | {"sound"}

    # into a second project with the same scheme: every person's label comes back as the same class
    other = tmp_path / "other" / "db.db"
    from conftest import Cli

    second = Cli(other)
    second.json_lines("ingest", str(SAMPLE_DIR / "tim_time.fountain"))
    second.json_lines("scheme", "use", "seed")
    refused = second("import", str(out))
    assert refused.exit_code == 1 and "unknown label 'sound'; use one of S, C, D, O" in refused.stderr
    second.json_lines("scheme", "add", "sound", "--key", "k")
    [report] = second.json_lines("import", str(out))
    assert report["imported"] >= 3
    back = tmp_path / "back.csv"
    second.json_lines("export", "--format", "csv", "--out", str(back), "--only-human")
    again = pd.read_csv(back, keep_default_na=False)
    first = frame[frame["label_source"] == "human"][["line_no", "label"]].sort_values("line_no")
    assert again[["line_no", "label"]].sort_values("line_no").to_numpy().tolist() == first.to_numpy().tolist()


# --- the app -------------------------------------------------------------------------------------

def test_label_page_hands_the_view_the_schemes_keys_and_titles(db_path, tmp_path, monkeypatch):
    from test_app import REPO, label_view_data, open_page

    from conftest import make_text_pdf
    from labeling.ingest.pipeline import ingest_path

    monkeypatch.setenv("SCRIPTLABEL_DB", str(db_path))
    monkeypatch.setenv("SCRIPTLABEL_SAMPLE", "0")
    monkeypatch.setenv("SCRIPTLABEL_RETRAIN_EVERY", "0")
    db = open_db(db_path)
    ingest_path(db, make_text_pdf(tmp_path / "lighthouse.pdf"))
    scheme_api.use_preset(db, LEAD, "seed")
    scheme_api.add_class(db, LEAD, "shot", key="k", display="shot line")
    data = label_view_data(open_page("label"))
    assert data["keys"] == {"a": "S", "c": "C", "d": "D", "o": "O", "k": "shot"}
    assert data["titles"]["shot"] == "shot line" and data["titles"]["S"] == "scene/description"
    assert REPO.exists()


def test_scheme_page_adds_a_class_and_a_rule(db_path, tmp_path, monkeypatch):
    from test_app import open_page, table

    from conftest import make_text_pdf
    from labeling.ingest.pipeline import ingest_path

    monkeypatch.setenv("SCRIPTLABEL_DB", str(db_path))
    monkeypatch.setenv("SCRIPTLABEL_SAMPLE", "0")
    db = open_db(db_path)
    ingest_path(db, make_text_pdf(tmp_path / "lighthouse.pdf"))
    at = open_page("scheme")
    at.text_input(key="scheme_add_name").set_value("shot")
    at.text_input(key="scheme_add_key").set_value("k")
    at.button[[b.label for b in at.button].index("Add class")].click()
    at.run()
    assert not at.exception
    assert "shot" in list(table(at, "class")["class"]) and load_scheme(db).keys["k"] == "shot"
    at.selectbox(key="rule_add_class").set_value("shot")
    at.text_input(key="rule_add_pattern").set_value("(a+)+$")
    at.button[[b.label for b in at.button].index("Add rule")].click()
    at.run()
    assert at.error and "takes too long" in at.error[0].value  # a hostile pattern: refused in one line
    at.selectbox(key="rule_add_class").set_value("shot")
    at.text_input(key="rule_add_pattern").set_value("^INT")
    at.button[[b.label for b in at.button].index("Add rule")].click()
    at.run()
    rules = table(at, "pattern")
    assert list(rules["pattern"]) == ["^INT"] and list(rules["class"]) == ["shot"]


def test_script_page_filters_and_relabels_with_the_schemes_classes(db_path, tmp_path, monkeypatch):
    from test_app import open_page

    from conftest import make_text_pdf
    from labeling.ingest.pipeline import ingest_path
    from store import scripts as script_store

    monkeypatch.setenv("SCRIPTLABEL_DB", str(db_path))
    monkeypatch.setenv("SCRIPTLABEL_SAMPLE", "0")
    monkeypatch.setenv("SCRIPTLABEL_RETRAIN_EVERY", "0")
    db = open_db(db_path)
    script_id = ingest_path(db, make_text_pdf(tmp_path / "lighthouse.pdf")).script_id
    scheme_api.use_preset(db, LEAD, "seed")
    scheme_api.add_class(db, LEAD, "shot", key="k")
    at = open_page("script_view")
    assert at.multiselect(key="view_labels").options == ["scene/description", "character", "dialog", "other",
                                                          "shot"]
    assert set(at.dataframe(key="view_table").value["shown"]) <= {"S", "C", "D", "O"}
    at.text_input(key="view_search").set_value("late again")
    at.run()
    at.session_state["view_table"] = {"selection": {"rows": [0], "columns": [], "cells": []}}
    at.run()
    assert {b.key for b in at.button if (b.key or "").startswith("key_")} == {"key_S", "key_C", "key_D", "key_O",
                                                                             "key_shot"}
    at.button(key="key_shot").click()
    at.run()
    line_id = int(script_store.lines_frame(db, script_id).set_index("line_no").loc[5, "line_id"])
    assert label_store.label_history(db, line_id)[-1]["label"] == "shot"
    assert at.dataframe(key="view_table").value["shown"].iloc[0] == "shot"
