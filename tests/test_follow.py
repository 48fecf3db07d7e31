"""A team's consistent corrections change the rest of the script after one retrain; sparse dissent does not.

Through the command line on the bundled sample, with the shipped model and the real training worker
(`label`, then `train --wait`, then `queue` reading the stored suggestions back).
"""

from __future__ import annotations

import json

import pytest

from conftest import SAMPLE_DIR

pytestmark = pytest.mark.slow


@pytest.fixture
def sample(cli):
    [pdf] = cli.json_lines("ingest", str(SAMPLE_DIR / "tim_time.pdf"))
    return pdf


def _suggestions(cli) -> dict[int, dict]:
    """Every unlabeled line with the current suggestion, by line id."""
    return {i["line_id"]: i for i in cli.json_lines("queue", "--n", "5000", "--strategy", "random", "--seed", "0")}


def _wrylies_and_others(cli) -> tuple[list[int], list[int], dict[int, dict]]:
    before = _suggestions(cli)
    wrylies = [i for i, item in before.items()
               if item["suggestion"] == "parenthetical" and item["text"].strip().startswith("(")]
    others = [i for i, item in before.items() if item["suggestion"] not in ("parenthetical", "dialogue")]
    if len(wrylies) < 16:
        pytest.skip(f"the shipped model calls only {len(wrylies)} of the sample's lines parenthetical")
    return wrylies, others, before


def _train(cli) -> dict:
    result = cli("train", "--wait", "--timeout", "600")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_ten_consistent_corrections_turn_the_rest_of_the_kind(cli, sample):
    wrylies, others, before = _wrylies_and_others(cli)
    # A team that writes wrylies as dialogue: 10 corrections, and 10 other lines confirmed as suggested.
    for line_id in wrylies[:10]:
        cli.json_lines("label", str(line_id), "dialogue", "--annotator", "ana")
    for line_id in others[::max(1, len(others) // 10)][:10]:
        cli.json_lines("label", str(line_id), before[line_id]["suggestion"], "--annotator", "ana")
    trained = _train(cli)
    assert trained["version"] == 1
    after = _suggestions(cli)
    rest = [i for i in wrylies[10:] if i in after]
    followed = sum(after[i]["suggestion"] == "dialogue" for i in rest)
    assert followed >= 0.9 * len(rest), f"{followed} of {len(rest)} remaining wrylies follow"
    # what the Label view announces ("v1: N suggestions on this script changed to dialogue")
    assert trained["changed"]["script_id"] == sample["script_id"] and trained["changed"]["to"]["dialogue"] >= followed
    unchanged = [i for i in others if i in after]
    changed = sum(after[i]["suggestion"] != before[i]["suggestion"] for i in unchanged)
    assert changed <= 0.02 * len(unchanged)


def test_two_dissenting_labels_among_ten_leave_the_kind_as_it_was(cli, sample):
    wrylies, _, before = _wrylies_and_others(cli)
    for line_id in wrylies[:8]:
        cli.json_lines("label", str(line_id), "parenthetical", "--annotator", "ana")
    for line_id in wrylies[8:10]:
        cli.json_lines("label", str(line_id), "dialogue", "--annotator", "bo")
    _train(cli)
    after = _suggestions(cli)
    rest = [i for i in wrylies[10:] if i in after]
    kept = sum(after[i]["suggestion"] == "parenthetical" for i in rest)
    assert kept >= 0.9 * len(rest), f"only {kept} of {len(rest)} remaining wrylies stayed parenthetical"


def test_labels_through_the_cli_alone_retrain_every_n_and_train_wait_covers_every_label(db_path, sample):
    """A script that labels through the CLI gets what the app's keys get: every 10th label starts a retrain
    in the background (its run id printed), and `train --wait` right after hands back a model that has
    every label given before it, even while that automatic run (on the first 10) is still going."""
    from conftest import Cli
    from labeling.training.runs import wait_for_run
    from store.db import open_db

    cli = Cli(db_path, retrain_every=10)
    wrylies, others, before = _wrylies_and_others(cli)
    printed = [cli.json_lines("label", str(line_id), "dialogue", "--annotator", "ana")[0]
               for line_id in wrylies[:10]]
    assert [p["retrain_run"] for p in printed[:9]] == [None] * 9
    auto_run = printed[9]["retrain_run"]
    assert isinstance(auto_run, int)
    for line_id in others[:2]:
        cli.json_lines("label", str(line_id), before[line_id]["suggestion"], "--annotator", "ana")
    trained = _train(cli)
    assert trained["status"] == "done" and trained["n_labels"] == 12, trained
    first = wait_for_run(open_db(db_path), auto_run, timeout_s=600)
    # the automatic run reads its snapshot when its worker starts: the 10 labels, or the 12 if they came first
    assert 10 <= first["n_labels"] <= 12 and first["trigger"] == "auto"
    after = _suggestions(cli)
    rest = [i for i in wrylies[10:] if i in after]
    followed = sum(after[i]["suggestion"] == "dialogue" for i in rest)
    assert followed >= 0.9 * len(rest), f"{followed} of {len(rest)} remaining wrylies follow"
