"""Overlap in the queue and the labeling view's claims, the one rule for several people's labels,
agreement, adjudication of lines and ratings, people and their work (labeling/team/)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import app_builders
from labeling.accounts.access import Identity, PermissionDeniedError
from labeling.session import sync as label_sync
from labeling.team import adjudication, agreement, overlap, people
from store import accounts
from store import labels as label_store
from store import scripts as script_store
from store import sequences as sequence_store
from store import team as team_store
from store.types import LABELS

LEAD = Identity("lee", "lead", "local")
ADMIN = Identity("root", "admin", "local")
ANNOTATOR = Identity("ana", "annotator", "local")


@pytest.fixture
def lines(db, tmp_path) -> list[int]:
    script_id = app_builders.pdf_script(db, tmp_path, pages=1)
    return [int(i) for i in script_store.lines_frame(db, script_id)["line_id"]]


def test_kappa_and_its_bootstrap_formula_match_scikit_learn():
    from sklearn.metrics import cohen_kappa_score

    rng = np.random.default_rng(3)
    a = list(rng.choice(LABELS[:4], 200))
    b = [x if rng.random() < 0.7 else rng.choice(LABELS[:4]) for x in a]
    assert agreement.cohen_kappa(a, b) == pytest.approx(cohen_kappa_score(a, b))
    codes = {label: i for i, label in enumerate(LABELS)}
    assert agreement._kappa_codes(np.array([codes[x] for x in a]), np.array([codes[x] for x in b]),
                                  len(LABELS)) == pytest.approx(cohen_kappa_score(a, b))
    assert agreement.cohen_kappa(["action"] * 3, ["action"] * 3) == 1.0
    assert np.isnan(agreement.cohen_kappa([], []))
    low, high = agreement.kappa_interval(a, b)
    assert low < cohen_kappa_score(a, b) < high and high - low < 0.3
    assert agreement.kappa_interval(a[:3], b[:3]) is None  # too few lines to say anything


def test_the_alpha_bootstrap_formula_matches_the_krippendorff_package():
    import krippendorff

    rng = np.random.default_rng(5)
    truth = rng.integers(0, 5, 300)
    matrix = np.stack([np.where(rng.random(300) < 0.75, truth, rng.integers(0, 5, 300)) for _ in range(4)]).astype(float)
    matrix[rng.random(matrix.shape) < 0.3] = np.nan  # people skip items
    whole = agreement._nominal_alpha_from(agreement.unit_coincidences(matrix).sum(axis=0)[None])[0]
    assert whole == pytest.approx(krippendorff.alpha(reliability_data=matrix, level_of_measurement="nominal"))
    low, high = agreement.alpha_interval(matrix)
    assert low < whole < high and high - low < 0.3


def test_krippendorff_alpha_edges():
    nan = np.nan
    assert agreement.krippendorff_alpha(np.array([[0, 1, nan], [nan, nan, 2]])) is None  # no item twice
    assert agreement.krippendorff_alpha(np.array([[1, 1, nan], [1, 1, 1]])) == 1.0
    # Three people, one item each disagreeing once: α below 1 but well above 0.
    value = agreement.krippendorff_alpha(np.array([[0, 1, 2, 0], [0, 1, 2, 0], [0, 1, 1, nan]]))
    assert 0.5 < value < 1.0


def test_several_peoples_labels_resolve_by_adjudication_then_majority_then_latest(db, lines):
    line = lines[0]
    label_store.add_label(db, line, "action", annotator="ana")
    label_store.add_label(db, line, "action", annotator="bob")
    label_store.add_label(db, line, "dialogue", annotator="cy")  # the latest, but one against two
    effective = label_store.effective_labels(db).set_index("line_id")
    assert (effective.loc[line, "label"], effective.loc[line, "label_source"]) == ("action", "human")
    assert label_store.labels_of_lines(db, [line])[line]["label"] == "action"
    assert label_store.current_labels(db).set_index("line_id").loc[line, "label"] == "action"
    tie = lines[1]
    label_store.add_label(db, tie, "action", annotator="ana")
    label_store.add_label(db, tie, "dialogue", annotator="bob")
    assert label_store.effective_labels(db).set_index("line_id").loc[tie, "label"] == "dialogue"  # the later one
    assert adjudication.adjudicate_line(db, LEAD, tie, "action", decision_id="adjudicate-t1") == "stored"
    assert adjudication.adjudicate_line(db, LEAD, tie, "action", decision_id="adjudicate-t1") == "duplicate"
    label_store.add_label(db, tie, "other", annotator="dee")  # after the decision: the decision still stands
    for frame in (label_store.effective_labels(db), label_store.current_labels(db)):
        row = frame.set_index("line_id").loc[tie]
        assert (row["label"], row.get("label_source", row.get("source")), row["annotator"]) == \
            ("action", "adjudicated", "lee")
    from store.export import export_frame

    exported = export_frame(db).set_index("line_id")
    assert exported.loc[tie, "label_source"] == "adjudicated" and exported.loc[tie, "label"] == "action"


def test_adjudication_queue_lines_and_who_may_settle(db, lines):
    for line, (a, b) in zip(lines[:4], [("action", "action"), ("dialogue", "dialogue"),
                                        ("character", "character"), ("action", "dialogue")]):
        label_store.add_label(db, line, a, annotator="ana")
        label_store.add_label(db, line, b, annotator="bob")
    [open_] = adjudication.line_disagreements(db)
    assert open_.line_id == lines[3] and open_.labels == {"ana": "action", "bob": "dialogue"}
    assert any(c["current"] and c["text"] == open_.text for c in open_.context)
    with pytest.raises(PermissionDeniedError):
        adjudication.adjudicate_line(db, ANNOTATOR, lines[3], "action")
    adjudication.adjudicate_line(db, LEAD, lines[3], "action")
    assert adjudication.line_disagreements(db) == []
    [closed] = adjudication.line_disagreements(db, open_only=False)
    assert closed.adjudicated == "action"
    report = agreement.line_agreement(db)
    assert [(p.a, p.b, p.n, p.agreement) for p in report.pairs] == [("ana", "bob", 4, 0.75)]  # the lead is no pair
    assert (report.disagreements, report.adjudicated) == (1, 1)
    assert {r["annotator"]: (r["n"], r["agreement"]) for r in report.versus_adjudicated} == \
        {"ana": (1, 1.0), "bob": (1, 0.0)}


def test_adjudicated_ratings_win_and_rating_agreement(db, lines):
    [seq] = [s.sequence_id for s in sequence_store.list_sequences(db)][:1]
    sequence_store.add_rating(db, seq, 2, department="fx", annotator="ana")
    sequence_store.add_rating(db, seq, 4, department="fx", annotator="bob")
    [waiting] = adjudication.rating_disagreements(db, "fx")
    assert waiting.values == {"ana": 2, "bob": 4} and waiting.adjudicated is None
    summary = agreement.rating_agreement(db, "fx")
    assert summary["sequences_overlapped"] == 1 and summary["pairs"][0]["agreement"] == 0.0
    with pytest.raises(PermissionDeniedError):
        adjudication.adjudicate_rating(db, ANNOTATOR, seq, 3, department="fx")
    adjudication.adjudicate_rating(db, LEAD, seq, 3, department="fx")
    sequence_store.add_rating(db, seq, 5, department="fx", annotator="cy")  # later, but the decision stands
    current = sequence_store.current_ratings(db, department="fx").set_index("sequence_id")
    assert (current.loc[seq, "value"], current.loc[seq, "annotator"]) == (3, "lee")
    assert adjudication.rating_disagreements(db, "fx") == []
    assert sequence_store.own_rating(db, seq, department="fx", annotator="lee") is None  # a decision, not a vote


def _sync(db, name, tab, *, want=50, events=(), held=()):
    request = label_sync.SyncRequest.parse({"annotator": name, "tab": f"tab-{tab}-000", "want": want,
                                            "strategy": "script", "events": list(events), "held": list(held)})
    return label_sync.sync(db, request)


def test_an_overlap_line_is_held_by_two_people_at_once_and_never_shows_the_others_label(db, lines):
    overlap.set_overlap(db, LEAD, share=0.5, annotators=2)
    shared = [i for i in lines if team_store.overlap_hash(i) < 0.5]
    single = [i for i in lines if i not in shared]
    ana = {item["line_id"] for item in _sync(db, "ana", "a")["items"]}
    bob = {item["line_id"] for item in _sync(db, "bob", "b")["items"]}
    assert ana == set(lines) and bob == set(shared)  # ana's tab holds every line; bob may share only overlap ones
    assert _sync(db, "ana", "a2")["items"] == []  # her second tab: never a line her first one holds
    first = shared[0]
    label = {"client_event_id": "event-ana-0001", "line_id": first, "action": "label", "label": "action"}
    after = _sync(db, "ana", "a", events=[label], held=sorted(ana - {first}), want=0)
    assert after["results"][0]["status"] == "stored"
    # Bob's tab keeps the line (it still waits for him), and what he is shown has no label of ana's.
    again = _sync(db, "bob", "b", held=sorted(bob), want=0)
    assert first not in again["drop"]
    shown = label_sync.describe_items(db, [label_sync.item_at(db, script_id=script_store.get_line(db, first)["script_id"],
                                                             line_no=script_store.get_line(db, first)["line_no"])],
                                      annotator="bob")[0]
    assert shown["label"] is None and all(c["label"] is None for c in shown["context"] if c["line_id"] in shared)
    assert label_sync.describe_items(db, [label_sync.item_at(
        db, script_id=shown["script_id"], line_no=shown["line_no"])], annotator="ana")[0]["label"] == "action"
    # Once bob labeled it too, a third person is never offered it; a single line never went to two people.
    label_store.add_label(db, first, "dialogue", annotator="bob")
    from labeling.session.queue import build_queue
    from labeling.session.strategies import EmptyPoolError

    with pytest.raises(EmptyPoolError):  # ana's and bob's tabs hold the rest: two people each at most
        build_queue(db, strategy="script", n=100, annotator="cy", tab="c")
    label_sync.release_tab(db, annotator="ana", tab="tab-a-000")
    cy = {item.line_id for item in build_queue(db, strategy="script", n=100, annotator="cy", tab="c")}
    assert first not in cy and set(single) <= cy


def test_assigned_work_comes_first(db, lines, tmp_path):
    other = app_builders.text_script(db, tmp_path)
    accounts.add_user(db, "ana", role="annotator", password="pw-ana-123")
    with pytest.raises(PermissionDeniedError):
        people.assign_work(db, LEAD, "ana", other)
    assert people.assign_work(db, ADMIN, "ana", other) is True
    assert people.assign_work(db, ADMIN, "ana", other) is False  # once
    from labeling.session.queue import build_queue

    queue = build_queue(db, strategy="margin", n=5, annotator="ana", random_share=0.0)
    assert {item.script_id for item in queue} == {other}
    assert {item.script_id for item in build_queue(db, strategy="margin", n=200, annotator="bob")} != {other}
    [row] = team_store.assignments(db, "ana")
    people.unassign_work(db, ADMIN, row["assignment_id"])
    assert team_store.assignments(db) == []
    assert [a["action"] for a in accounts.audit_log(db)][:2] == ["unassign", "assign"]


def test_people_added_reset_and_removed_by_an_admin_only(db):
    with pytest.raises(PermissionDeniedError):
        people.add_person(db, LEAD, "bob", role="annotator")
    added = people.add_person(db, ADMIN, "bob", role="annotator")
    assert added.password and accounts.authenticate(db, "bob", added.password).role == "annotator"
    link = people.reset_password(db, ADMIN, "bob")  # a one-time link, not a password to pass on
    assert link.startswith("/api/account/reset?token=") and accounts.authenticate(db, "bob", added.password)
    fresh = link.split("token=", 1)[1]
    assert accounts.use_reset_link(db, fresh, "bobs-own-password") == "bob"
    assert accounts.authenticate(db, "bob", "bobs-own-password")
    with pytest.raises(accounts.SignInError):
        accounts.authenticate(db, "bob", added.password)
    with pytest.raises(accounts.ResetLinkError):
        accounts.use_reset_link(db, fresh, "another-password")  # once
    people.change_role(db, ADMIN, "bob", "lead")
    assert accounts.get_user(db, "bob").role == "lead"
    accounts.add_user(db, "root", role="admin", password="pw-root-123")
    with pytest.raises(people.PeopleError):
        people.change_role(db, ADMIN, "root", "annotator")  # the last admin
    with pytest.raises(people.PeopleError):
        people.remove_person(db, ADMIN, "root")  # herself
    people.remove_person(db, ADMIN, "bob")
    assert accounts.find_user(db, "bob") is None
    log = accounts.audit_log(db)
    assert [entry["action"] for entry in log][:5] == ["user_remove", "user_role", "password_set", "user_passwd",
                                                      "user_add"]
    assert fresh not in str(log) and added.password not in str(log)  # a password is never logged


def test_progress_per_person(db, lines):
    for line in lines[:4]:
        label_store.add_label(db, line, "action", annotator="ana")
    label_store.add_label(db, lines[0], "dialogue", annotator="bob")
    table = people.progress(db).set_index("annotator")
    assert table.loc["ana", "labels"] == 4 and table.loc["bob", "labels"] == 1
    assert table.loc["ana", "agreement_with_others"] == 0.0


def test_overlap_sequences_show_no_rating_until_n_people_rated_them(db, lines):
    from labeling.sequences.view import sequence_table

    script_id = script_store.get_line(db, lines[0])["script_id"]
    frame = script_store.lines_frame(db, script_id).assign(shown="action")
    seq = int(sequence_store.list_sequences(db, script_id)[0].sequence_id)

    def rating(name):
        table = overlap.blind_ratings(db, sequence_table(db, script_id, frame, department="fx"),
                                      script_id=script_id, annotator=name, department="fx")
        value = table.set_index("sequence_id").loc[seq, "rating"]
        return None if value is pd.NA or value != value else int(value)

    sequence_store.add_rating(db, seq, 4, department="fx", annotator="ana")
    assert rating("bob") == 4  # no overlap: everyone sees the rating in force
    overlap.set_overlap(db, LEAD, share=1.0, annotators=2)
    assert (rating("ana"), rating("bob")) == (4, None)  # bob rates it on his own
    sequence_store.add_rating(db, seq, 2, department="fx", annotator="bob")
    assert rating("cy") == 2  # two people rated it: done
    [waiting] = adjudication.rating_disagreements(db, "fx")
    assert waiting.values == {"ana": 4, "bob": 2}
