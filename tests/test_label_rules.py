"""Rules people write (store/label_rules.py, labeling/label_rules.py, `scriptlabel rule …`): a rule labels the
lines it matches, shows its accuracy against people's labels, and yields to the model once they disagree."""

from __future__ import annotations

import json

import pytest

import app_builders
from labeling import label_rules
from labeling import scheme as scheme_api
from labeling.accounts.access import Identity, PermissionDeniedError
from labeling.ingest.pipeline import ingest_path
from labeling.session.queue import build_queue
from store import labels as label_store
from store import scripts as script_store
from store.label_rules import YIELD_MIN_DISAGREE, RuleError

LEAD = Identity("lea", "lead", "local")

# Four shot lines at the left margin, and three lines of dialogue that start the same way.
SHOTS = """INT. HALL - NIGHT

ANGLE ON the door.

Maya waits by the stairs.

ANGLE ON the clock.

                      MAYA
          ANGLE ON me, I said.

ANGLE ON the window.

ANGLE ON the stairs.

                      TIM
          ANGLE ON nothing.

                      TIM
          ANGLE ON everything.
"""


@pytest.fixture
def shots(db, tmp_path):
    path = tmp_path / "hall.txt"
    path.write_text(SHOTS)
    script_id = ingest_path(db, path).script_id
    app_builders.predict(db, script_id, label="action", confidence=0.7)
    scheme_api.add_class(db, LEAD, "shot", key="k")
    lines = script_store.lines_frame(db, script_id)
    ids = {text.strip(): int(i) for text, i in zip(lines["text"], lines["line_id"])}
    return script_id, ids


def _effective(db, script_id):
    return label_store.effective_labels(db, script_id).set_index("line_id")


def test_a_rule_labels_the_lines_it_matches_as_a_rule_suggestion(db, shots):
    script_id, ids = shots
    status = label_rules.add_rule(db, LEAD, "shot", r"^ANGLE ON")
    assert (status.checked, status.accuracy, status.overruled) == (0, None, False)
    frame = _effective(db, script_id)
    matched = [ids["ANGLE ON the door."], ids["ANGLE ON me, I said."], ids["ANGLE ON the window."]]
    assert (frame.loc[matched, "label"] == "shot").all() and (frame.loc[matched, "label_source"] == "rule").all()
    assert frame.at[ids["Maya waits by the stairs."], "label_source"] == "model"  # not matched: the model's
    assert frame.at[ids["INT. HALL - NIGHT"], "label_source"] == "rule"  # the built-in INT./EXT. rule stays
    items = {i.line_id: i for i in build_queue(db, script_id=script_id, strategy="script", n=50)}
    door = items[ids["ANGLE ON the door."]]
    assert (door.suggestion, door.suggestion_source, door.rule["rule_id"]) == ("shot", "rule", status.rule.rule_id)
    assert door.rule["model_suggestion"] == "action"


def test_an_indent_range_narrows_a_rule_to_a_layout_level(db, shots):
    script_id, ids = shots
    label_rules.add_rule(db, LEAD, "shot", r"^ANGLE ON", indent="0-5")
    frame = _effective(db, script_id)
    assert frame.at[ids["ANGLE ON the door."], "label"] == "shot"
    assert frame.at[ids["ANGLE ON me, I said."], "label_source"] == "model"  # indented dialogue: not matched
    [listed] = label_rules.list_rules(db)
    assert listed["indent"] == "0-5" and listed["matches"] == 4


def test_a_rule_reports_its_accuracy_and_yields_to_the_model_once_people_disagree(db, shots):
    script_id, ids = shots
    rule_id = label_rules.add_rule(db, LEAD, "shot", r"^ANGLE ON").rule.rule_id
    label_store.add_label(db, ids["ANGLE ON the door."], "shot", annotator="ana")
    [listed] = label_rules.list_rules(db)
    assert (listed["checked"], listed["agree"], listed["accuracy"], listed["status"]) == (1, 1, 1.0, "active")
    items = {i.line_id: i for i in build_queue(db, script_id=script_id, strategy="script", n=50)}
    assert items[ids["ANGLE ON the window."]].rule == {"rule_id": rule_id, "checked": 1, "accuracy": 1.0,
                                                        "model_suggestion": "action"}
    # people label the dialogue that starts like a shot as dialogue: below the threshold the rule holds…
    disagreeing = [ids["ANGLE ON me, I said."], ids["ANGLE ON nothing."], ids["ANGLE ON everything."]]
    for line_id in disagreeing[:YIELD_MIN_DISAGREE - 1]:
        label_store.add_label(db, line_id, "dialogue", annotator="ana")
    assert label_rules.list_rules(db)[0]["status"] == "active"
    assert _effective(db, script_id).at[ids["ANGLE ON the window."], "label_source"] == "rule"
    # …at it the rule is overruled: its lines show the model's suggestion again, its record stays listed
    label_store.add_label(db, disagreeing[-1], "dialogue", annotator="bo")
    [listed] = label_rules.list_rules(db)
    assert (listed["checked"], listed["agree"], listed["accuracy"], listed["status"]) == (4, 1, 0.25, "overruled")
    frame = _effective(db, script_id)
    assert frame.at[ids["ANGLE ON the window."], "label_source"] == "model"
    assert frame.at[ids["ANGLE ON the window."], "label"] == "action"
    items = {i.line_id: i for i in build_queue(db, script_id=script_id, strategy="script", n=50)}
    assert items[ids["ANGLE ON the window."]].suggestion_source == "model"
    # people's labels themselves are untouched
    assert frame.loc[disagreeing, "label"].tolist() == ["dialogue"] * 3


def test_bulk_accept_leaves_lines_a_rule_labels_differently_to_people(db, shots):
    script_id, ids = shots
    before = label_store.preview_accept(db, script_id, above=0.5)
    label_rules.add_rule(db, LEAD, "shot", r"^ANGLE ON")
    after = label_store.preview_accept(db, script_id, above=0.5)
    assert after.skipped_rule == before.skipped_rule + 7 and after.lines == before.lines - 7
    assert ids["ANGLE ON the door."] not in after.line_ids


def test_hostile_or_invalid_patterns_and_unknown_classes_are_refused_in_one_line(db, shots):
    with pytest.raises(RuleError, match="takes too long"):
        label_rules.add_rule(db, LEAD, "shot", r"^(\w+\s?)+$")
    with pytest.raises(RuleError, match="not a valid regular expression"):
        label_rules.add_rule(db, LEAD, "shot", r"^(ANGLE ON")
    with pytest.raises(RuleError, match="unknown label 'villain': use one of"):
        label_rules.add_rule(db, LEAD, "villain", r"^X")
    with pytest.raises(RuleError, match="a column like 12 or a range"):
        label_rules.add_rule(db, LEAD, "shot", r"^X", indent="left")
    with pytest.raises(PermissionDeniedError):
        label_rules.add_rule(db, Identity("ana", "annotator", "local"), "shot", r"^X")
    assert label_rules.list_rules(db) == []


def test_cli_rule_commands_json_audit_and_idempotent_remove(cli, tmp_path):
    path = tmp_path / "hall.txt"
    path.write_text(SHOTS)
    cli.json_lines("ingest", str(path))
    cli.json_lines("scheme", "add", "shot", "--key", "k")
    [added] = cli.json_lines("rule", "add", "shot", "--pattern", "^ANGLE ON", "--indent", "0-5")
    assert (added["class"], added["pattern"], added["indent"], added["status"]) == ("shot", "^ANGLE ON", "0-5", "active")
    [again] = cli.json_lines("rule", "add", "shot", "--pattern", "^ANGLE ON", "--indent", "0-5")
    assert again["rule_id"] == added["rule_id"]  # the same rule twice is one rule
    [listed] = cli.json_lines("rule", "list")
    assert listed["matches"] == 4 and listed["reads_as"] == "shot"
    bad = cli("rule", "add", "shot", "--pattern", "(a|aa)+$")
    assert bad.exit_code == 1 and bad.stderr.count("\n") == 1 and "takes too long" in bad.stderr
    assert cli.json_lines("rule", "remove", str(added["rule_id"])) == [{"rule_id": added["rule_id"], "status": "removed"}]
    assert cli.json_lines("rule", "remove", str(added["rule_id"]))[0]["status"] == "already_removed"
    assert cli.json_lines("rule", "list") == []
    missing = cli("rule", "remove", "99")
    assert missing.exit_code == 1 and "no rule 99" in missing.stderr
    from store.db import open_db

    log = [(r["action"], json.loads(r["detail"])) for r in open_db(cli.db_file).query(
        "SELECT action, detail FROM audit_log WHERE action LIKE 'rule.%' ORDER BY audit_id")]
    assert [a for a, _ in log] == ["rule.add", "rule.remove"]
    assert log[0][1]["before"] is None and log[0][1]["after"]["pattern"] == "^ANGLE ON"
    assert log[1][1]["after"] is None and log[1][1]["before"]["rule_id"] == added["rule_id"]
