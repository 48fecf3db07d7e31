"""The team's command-line contract: `overlap`, `queue --annotator`, `agreement` (issue 24)."""

from __future__ import annotations

import json

import pytest

import app_builders
from store import scripts as script_store
from store import team as team_store
from store.rules import rule_label


@pytest.fixture
def one_page(db, tmp_path) -> list[int]:
    """Line ids of a one-page script (no two lines alike, so no queue item stands for a group)."""
    script_id = app_builders.pdf_script(db, tmp_path, pages=1)
    return [int(i) for i in script_store.lines_frame(db, script_id)["line_id"]]


def _queue(cli, *args) -> list[dict]:
    result = cli("queue", "--n", "1000", *args)
    if result.exit_code != 0:
        assert "nothing left" in result.stderr
        return []
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_overlap_prints_the_setting_and_refuses_bad_values(cli, db, one_page):
    [shown] = cli.json_lines("overlap", "0.5")
    assert (shown["share"], shown["annotators"], shown["scope"], shown["lines"]) == (0.5, 2, "lines", len(one_page))
    assert shown["lines_in_overlap"] == sum(team_store.overlap_hash(i) < 0.5 for i in one_page)
    [three] = cli.json_lines("overlap", "0.25", "--annotators", "3", "--scripts")
    assert (three["share"], three["annotators"], three["scope"]) == (0.25, 3, "scripts")
    for bad in (["1.5"], ["-0.1"], ["0.2", "--annotators", "1"], ["lots"]):
        result = cli("overlap", *bad)
        assert result.exit_code != 0 and result.stderr.startswith("error:") and len(result.stderr.splitlines()) == 1
    [again] = cli.json_lines("overlap", "0.5")  # what it was before the bad tries
    assert again["annotators"] == 2
    logged = [json.loads(r[0]) for r in db.execute("SELECT detail FROM audit_log WHERE action = 'overlap' "
                                                   "ORDER BY audit_id")]
    assert [entry["after"]["share"] for entry in logged] == [0.5, 0.25, 0.5]
    assert logged[1]["before"] == {"share": 0.5, "annotators": 2, "scope": "lines"}


def test_queue_for_an_annotator_gives_overlap_lines_to_a_second_person_never_twice(cli, db, one_page):
    # lines a rule already labels (INT./EXT. headings) are never asked of anyone (labeling.session.queue)
    texts = script_store.lines_frame(db)[["line_id", "text"]].set_index("line_id")["text"]
    one_page = [i for i in one_page if rule_label(texts[i]) is None]
    cli.json_lines("overlap", "0.5")
    overlap = {i for i in one_page if team_store.overlap_hash(i) < 0.5}
    assert 2 <= len(overlap) < len(one_page)
    by_ana = one_page[:8]
    for line_id in by_ana:
        assert cli("label", str(line_id), "action", "--annotator", "ana").exit_code == 0
    ana = {item["line_id"] for item in _queue(cli, "--annotator", "ana")}
    bob_items = _queue(cli, "--annotator", "bob")
    bob = [item["line_id"] for item in bob_items]
    assert not ana & set(by_ana)  # never a line she labeled
    waiting = [i for i in by_ana if i in overlap]
    assert waiting and set(waiting) <= set(bob)  # overlap lines ana labeled wait for a second person...
    assert bob[:len(waiting)] == sorted(bob[:len(waiting)], key=bob.index) and set(bob[:len(waiting)]) == set(waiting)
    assert not set(by_ana) - overlap & set(bob)  # ...the others are done
    assert set(one_page) - set(by_ana) <= set(bob)  # and every new line
    assert all(item["text"] for item in bob_items)
    # Bob labels them: two people each, so a third person is not asked (N = 2) ...
    for line_id in waiting:
        assert cli("label", str(line_id), "dialogue", "--annotator", "bob").exit_code == 0
    assert not set(waiting) & {item["line_id"] for item in _queue(cli, "--annotator", "cy")}
    assert not set(waiting) & {item["line_id"] for item in _queue(cli, "--annotator", "bob")}
    # ... unless the project asks for three.
    cli.json_lines("overlap", "0.5", "--annotators", "3")
    assert set(waiting) <= {item["line_id"] for item in _queue(cli, "--annotator", "cy")}
    # Without --annotator the queue is the lines nobody labeled, as before.
    assert not set(by_ana) & {item["line_id"] for item in _queue(cli)}


def test_queue_annotator_without_overlap_skips_what_others_labeled(cli, one_page):
    assert cli("label", str(one_page[0]), "action", "--annotator", "ana").exit_code == 0
    assert one_page[0] not in {item["line_id"] for item in _queue(cli, "--annotator", "bob")}
    assert cli("queue", "--annotator", " ").exit_code != 0


ANA = ["action", "action", "dialogue", "dialogue", "character", "action"]
BOB = ["action", "dialogue", "dialogue", "dialogue", "character", "action"]


def test_agreement_json_matches_kappa_computed_by_hand(cli, one_page):
    for line_id, a, b in zip(one_page, ANA, BOB):
        assert cli("label", str(line_id), a, "--annotator", "ana").exit_code == 0
        assert cli("label", str(line_id), b, "--annotator", "bob").exit_code == 0
    cli("label", str(one_page[7]), "other", "--annotator", "ana")  # one person only: not overlapped
    [report] = cli.json_lines("agreement")
    assert report["lines_overlapped"] == 6
    [pair] = report["pairs"]
    # 5 of 6 agree: p_o = 30/36; marginals ana (3 action, 2 dialogue, 1 character), bob (2, 3, 1):
    # p_e = (3·2 + 2·3 + 1·1)/36 = 13/36; κ = (30 − 13)/(36 − 13) = 17/23.
    assert (pair["a"], pair["b"], pair["n"]) == ("ana", "bob", 6)
    assert pair["kappa"] == pytest.approx(17 / 23, abs=1e-4)
    low, high = pair["ci95"]
    assert low <= pair["kappa"] <= high <= 1.0
    # Per class, "action or not": 2 both, 1 ana only, 3 neither → p_o = 5/6, p_e = 1/2, κ = 2/3;
    # n counts the comparisons where either gave the label.
    assert report["per_class"]["action"]["n"] == 3
    assert report["per_class"]["action"]["kappa"] == pytest.approx(2 / 3, abs=1e-4)
    assert report["per_class"]["dialogue"]["kappa"] == pytest.approx(2 / 3, abs=1e-4)
    assert report["per_class"]["character"] == {"n": 1, "kappa": 1.0, "ci95": [1.0, 1.0]}  # they never split on it
    assert "scene_heading" not in report["per_class"]
    # Krippendorff's α: 12 values (5 action, 5 dialogue, 2 character), one disagreeing pair:
    # D_o = 2/12, D_e = (144 − 25 − 25 − 4)/(12·11) → α = 1 − (2/12)/(90/132) = 68/90.
    assert report["alpha"] == pytest.approx(68 / 90, abs=1e-4)
    assert report["disagreements"] == 1 and report["adjudicated"] == 0
    assert report["per_script"][0]["lines_overlapped"] == 6
    assert sum(day["comparisons"] for day in report["over_time"]) == 6
    [only] = cli.json_lines("agreement", "--script", str(report["per_script"][0]["script_id"]))
    assert only["pairs"] == report["pairs"]
    missing = cli("agreement", "--script", "999")
    assert missing.exit_code != 0 and "999" in missing.stderr


def test_agreement_of_three_people_and_an_empty_library(cli, db, one_page):
    [empty] = cli.json_lines("agreement")
    assert (empty["lines_overlapped"], empty["pairs"], empty["per_class"], empty["alpha"]) == (0, [], {}, None)
    for line_id in one_page[:5]:
        for name in ("ana", "bob", "cy"):
            cli("label", str(line_id), "action" if line_id != one_page[0] or name != "cy" else "other",
                "--annotator", name)
    [report] = cli.json_lines("agreement")
    assert report["lines_overlapped"] == 5 and len(report["pairs"]) == 3
    assert {(p["a"], p["b"]) for p in report["pairs"]} == {("ana", "bob"), ("ana", "cy"), ("bob", "cy")}
    assert next(p for p in report["pairs"] if p["b"] == "bob")["kappa"] == 1.0
    assert report["alpha"] < 1.0
