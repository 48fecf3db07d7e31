"""Issue 24's "done when", in headless Chromium with sign-in: an admin adds the team in the browser (no
command line), a lead sets an overlap, two annotators label from their own queues by keys, the Team page
shows their agreement, and the lead adjudicates their disagreements with keys only.

The figures of the run (lines overlapped, κ, disagreements adjudicated) are written to
test-artifacts/team-figures.json."""

from __future__ import annotations

import json
import re
import sqlite3

import pytest

from browser_support import (ARTIFACTS, App, _current_line, _press, _screenshot, _settle, _wait_saved,
                             require_browser)
from conftest import SAMPLE_DIR

pytestmark = [pytest.mark.slow, pytest.mark.browser]
require_browser()
ANA_KEYS = "adcdhapdto"
BOB_KEYS = "addcdaptoa"  # mostly the same keys on the same kind of line, not always: some disagreements


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    from labeling.ingest.pipeline import ingest_path
    from store import accounts
    from store.db import open_db

    tmp = tmp_path_factory.mktemp("team")
    db_path = tmp / "data" / "scriptlabel.db"
    db = open_db(db_path)
    ingest_path(db, SAMPLE_DIR / "tim_time.pdf", title="Tim Time")
    accounts.add_user(db, "root", role="admin", password="pw-root-123")  # the first admin, made at install
    db.close()
    app = App(db_path, tmp / "streamlit.log", env={"SCRIPTLABEL_RETRAIN_EVERY": "0"})
    yield app, db_path
    app.stop()


def _sign_in(page, app, name, password, path):
    page.goto(f"{app.url}/{path}")
    page.locator("form#sign-in").wait_for(timeout=30_000)
    page.fill("#name", name)
    page.fill("#password", password)
    page.click("button[type=submit]")


def _heading(page, title):
    page.get_by_role("heading", name=title, level=1).wait_for(timeout=60_000)
    _settle(page)


def _add_person(page, name, role) -> str:
    """On the Users page: add a person, return the temporary password the page shows once."""
    page.locator(".st-key-user_add_name input").fill(name)
    page.locator(".st-key-user_add_role").click()
    page.get_by_role("option", name=role, exact=True).click()
    page.locator(".st-key-user_add_submit button").click()
    page.get_by_text(f"Temporary password for {name}").wait_for(timeout=30_000)
    _settle(page)
    return page.locator('[data-testid="stCode"] code').last.inner_text().strip()


def _label(page, keys: str) -> None:
    here = _current_line(page)
    for key in keys:
        here = _press(page, key, here)
        page.wait_for_timeout(150)
    _wait_saved(page)


def _body(page) -> str:
    return page.evaluate("document.body.innerText")


def _wait_text(page, pattern: str, timeout_s: float = 60) -> str:
    """The page's text once `pattern` (a regex) is in it: the agreement is computed while the page loads."""
    import time

    deadline = time.monotonic() + timeout_s
    while True:
        text = _body(page)
        if re.search(pattern, text) or time.monotonic() > deadline:
            return text
        page.wait_for_timeout(300)


def _waiting_text(n: int) -> str:
    return "1 line waits for a decision" if n == 1 else f"{n} lines wait for a decision"


def _waiting(page) -> int:
    found = re.search(r"(\d+) lines? waits? for a decision", _body(page))
    return int(found.group(1)) if found else 0


def test_two_people_overlap_agree_and_a_lead_adjudicates_with_keys(browser, served):
    from labeling.team.agreement import line_agreement
    from labeling.team.overlap import get_overlap
    from store.db import open_db

    app, db_path = served
    admin = browser.new_context()
    page = admin.new_page()
    _sign_in(page, app, "root", "pw-root-123", "users")
    _heading(page, "Users")
    passwords = {name: _add_person(page, name, role)
                 for name, role in (("ana", "annotator"), ("bob", "annotator"), ("lee", "lead"))}
    assert len(set(passwords.values())) == 3 and all(len(p) >= 12 for p in passwords.values())
    _screenshot(page, "team-users")
    admin.close()

    lead = browser.new_context()
    lee = lead.new_page()
    _sign_in(lee, app, "lee", passwords["lee"], "team")
    _heading(lee, "Team")
    assert "No line has labels from two people yet" in _body(lee)
    share = lee.locator(".st-key-overlap_share input")
    share.fill("0.5")
    share.press("Enter")
    _settle(lee)
    lee.locator(".st-key-overlap_save button").click()
    lee.get_by_text("lines overlap (2 people each)").wait_for(timeout=30_000)
    db = open_db(db_path)
    assert (get_overlap(db).share, get_overlap(db).annotators) == (0.5, 2)

    people = {}
    for name in ("ana", "bob"):
        people[name] = browser.new_context()
        tab = people[name].new_page()
        _sign_in(tab, app, name, passwords[name], "label")
        _current_line(tab)
        people[name] = (people[name], tab)
    _label(people["ana"][1], ANA_KEYS)  # ana first: half her lines overlap and wait for a second person
    _label(people["bob"][1], BOB_KEYS)  # bob's queue gives him those first, then new lines
    _label(people["ana"][1], ANA_KEYS[:6])  # and ana now gets the overlap lines bob labeled first
    for context, _ in people.values():
        context.close()

    rows = sqlite3.connect(db_path).execute(
        "SELECT annotator, line_id FROM label_events WHERE source = 'human' AND action = 'set'").fetchall()
    by = {name: [line for who, line in rows if who == name] for name in ("ana", "bob")}
    assert len(by["ana"]) == len(set(by["ana"])) == 16 and len(by["bob"]) == len(set(by["bob"])) == 10  # never twice
    report = line_agreement(db)
    assert report.lines_overlapped >= 4 and report.disagreements >= 1
    assert [(p.a, p.b) for p in report.pairs] == [("ana", "bob")]

    lee.reload()
    _heading(lee, "Team")
    text = _wait_text(lee, r"Lines overlapped\s+\d")
    (ARTIFACTS / "team-page.txt").write_text(text)
    assert re.search(rf"Lines overlapped\s+{report.lines_overlapped}\b", text)
    assert re.search(rf"Cohen's κ \(all pairs\)\s+{report.kappa:.3f}", text)
    assert f"{report.disagreements} open" in text
    _screenshot(lee, "team-agreement")
    open_before = _waiting(lee)
    assert open_before == report.disagreements
    # Keys work after a widget was used: pick "lines" in the Settle radio, then only keys.
    lee.locator(".st-key-adjudicate_mode").get_by_text("lines", exact=True).click()
    _settle(lee)
    settled = 0
    while _waiting(lee):
        before = _waiting(lee)
        lee.keyboard.press("d")
        lee.wait_for_function(f"() => !document.body.innerText.includes('{_waiting_text(before)}')",
                              timeout=30_000)
        settled += 1
        _settle(lee)
    lee.get_by_text("No line waits for a decision").wait_for(timeout=30_000)
    after = line_agreement(db)
    assert settled == open_before and (after.disagreements, after.adjudicated) == (open_before, open_before)
    decided = db.execute("SELECT COUNT(*), MIN(annotator), MAX(label) FROM label_events "
                         "WHERE source = 'adjudicated'").fetchone()
    assert decided == (open_before, "lee", "dialogue")
    lee.reload()
    _heading(lee, "Team")
    assert "Each person against the adjudicated labels" in _wait_text(lee, "against the adjudicated labels")
    _screenshot(lee, "team-adjudicated")
    lead.close()
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "team-figures.json").write_text(json.dumps({
        "labels": {name: len(ids) for name, ids in by.items()}, "lines_overlapped": report.lines_overlapped,
        "kappa": report.kappa, "pairs": [vars(p) for p in report.pairs], "alpha": report.alpha,
        "disagreements": report.disagreements, "adjudicated_with_keys": settled,
        "versus_adjudicated": after.versus_adjudicated}, indent=1, default=str))
    db.close()
