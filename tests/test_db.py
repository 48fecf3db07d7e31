"""Opening a database (store/db.py, store/schema.py): the schema stamp, integrity checks, migrations
that keep data, ids never reused, media per database, listing commands that create nothing."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from conftest import db_dump, make_text_pdf
from labeling.ingest.pipeline import ingest_path
from store import labels as label_store
from store import scripts as script_store
from store import sequences as sequence_store
from store.db import DamagedDatabaseError, NewerDatabaseError, data_dir, open_db
from store.schema import migrations


def _error_line(result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    return lines[0]


def test_old_database_is_migrated_keeping_every_row_and_ids_become_autoincrement(tmp_path):
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA foreign_keys=ON")
    from sqlite_utils import Database

    old = Database(conn)
    migrations.apply(old, stop_before=[m for m in ("0200_ingest_jobs", "0200_model_pins", "0200_autoincrement_ids")])
    old.execute("INSERT INTO scripts(title, format, source_name, source_sha256, status, created_at) "
                "VALUES ('A', 'txt', 'a.txt', 'x', 'ready', 'now'), ('B', 'txt', 'b.txt', 'y', 'ready', 'now')")
    old.execute("INSERT INTO sequences(script_id, code, first_line_no, last_line_no) VALUES (2, 'sq0010', 1, 1)")
    old.execute("INSERT INTO lines(script_id, line_no, page, text, original_text, indent, gap_before, sequence_id) "
                "VALUES (1, 1, 1, 'INT. A', 'INT. A', 0, 0, NULL), (2, 1, 1, 'INT. B', 'INT. B', 0, 0, 1)")
    old.execute("INSERT INTO label_events(line_id, label, annotator, source, created_at) "
                "VALUES (1, 'scene_heading', 'ana', 'human', 'now'), (2, 'scene_heading', 'ana', 'human', 'now')")
    conn.commit()
    conn.close()

    db = open_db(path)
    assert db.execute("SELECT COUNT(*) FROM label_events").fetchone()[0] == 2
    assert db.execute("SELECT sequence_id FROM lines WHERE line_id = 2").fetchone()[0] == 1
    for table in ("scripts", "lines", "sequences"):
        assert "AUTOINCREMENT" in db.execute("SELECT sql FROM sqlite_master WHERE name = ?", [table]).fetchone()[0]
    assert db.execute("PRAGMA foreign_key_check").fetchall() == []
    assert db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    script_store.delete_script(db, 2)  # the newest script, line and sequence go...
    new_id = script_store.create_script(db, title="C", format="txt", source_name="c.txt", sha256="z")
    assert new_id == 3  # ...and their ids are not handed out again
    assert len(label_store.current_labels(db, 1)) == 1


def test_ids_are_never_reused_after_a_delete(db, tmp_path):
    first = ingest_path(db, make_text_pdf(tmp_path / "a.pdf"))
    max_line = int(script_store.lines_frame(db, first.script_id)["line_id"].max())
    max_seq = max(s.sequence_id for s in sequence_store.list_sequences(db, first.script_id))
    script_store.delete_script(db, first.script_id)
    second = ingest_path(db, make_text_pdf(tmp_path / "a.pdf"))
    assert second.script_id > first.script_id
    assert int(script_store.lines_frame(db, second.script_id)["line_id"].min()) > max_line
    assert min(s.sequence_id for s in sequence_store.list_sequences(db, second.script_id)) > max_seq


def test_database_from_a_newer_version_is_refused_and_left_alone(cli, db_path, tmp_path):
    cli.json_lines("ingest", str(make_text_pdf(tmp_path / "a.pdf")))
    conn = sqlite3.connect(db_path)
    conn.execute("INSERT INTO _sqlite_migrations(migration_set, name, applied_at) "
                 "VALUES ('scriptlabel', '9000_from_the_future', 'later')")
    conn.commit()
    conn.close()
    before = db_dump(db_path)
    with pytest.raises(NewerDatabaseError, match="newer version"):
        open_db(db_path)
    export = ["export", "--format", "csv", "--out", str(tmp_path / "x.csv")]
    for args in (["scripts"], ["label", "1", "action"], export):
        result = cli(*args)
        assert result.exit_code == 1 and "newer version of scriptlabel" in _error_line(result)
    assert db_dump(db_path) == before


def _corrupt(path: Path) -> None:
    """Overwrite pages in the middle of the file (not the header), as a bad disk or a torn copy would."""
    data = bytearray(path.read_bytes())
    page = 4096
    for offset in range(2 * page, len(data) - page, 3 * page):
        data[offset + 100:offset + 900] = b"\xde\xad\xbe\xef" * 200
    path.write_bytes(bytes(data))


def test_corrupt_database_refuses_writes_and_listing_errors_are_messages(cli, db_path, tmp_path):
    cli.json_lines("ingest", str(make_text_pdf(tmp_path / "a.pdf", pages=6)))
    db = open_db(db_path)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    _corrupt(db_path)
    before = db_path.read_bytes()
    with pytest.raises(DamagedDatabaseError, match="damaged"):
        open_db(db_path, check=True)
    label = cli("label", "1", "action")
    assert label.exit_code == 1 and "damaged" in _error_line(label)
    export = cli("export", "--format", "csv", "--out", str(tmp_path / "out.csv"))
    assert export.exit_code != 0
    _error_line(export)
    assert db_path.read_bytes() == before


def test_quick_check_runs_after_an_unclean_shutdown_only(db_path, monkeypatch):
    import store.db as store_db

    calls = []
    monkeypatch.setattr(store_db, "check_integrity", lambda db, path: calls.append(path))
    monkeypatch.setattr(store_db, "_CHECKED", set())
    open_db(db_path).close()  # a clean close removes the write-ahead log
    open_db(db_path).close()
    assert calls == []
    Path(f"{db_path}-wal").write_bytes(b"\0" * 64)  # what a killed writer leaves behind
    open_db(db_path, recover=False).close()
    assert calls == [db_path]
    Path(f"{db_path}-wal").write_bytes(b"\0" * 64)
    open_db(db_path, recover=False).close()  # once per process: the app opens a connection per session
    assert calls == [db_path]


@pytest.mark.parametrize("command", [["scripts"], ["sequences"], ["queue"], ["evaluate"], ["predict"],
                                     ["export", "--format", "csv", "--out", "OUT"], ["label", "1", "action"],
                                     ["rate", "1", "3"], ["tag", "1", "water"]])
def test_mistyped_db_creates_no_file_or_folder(tmp_path, command):
    from click.testing import CliRunner

    from labeling.cli import cli

    missing = tmp_path / "typo" / "scriptlabl.db"
    args = [a.replace("OUT", str(tmp_path / "out.csv")) for a in command]
    result = CliRunner().invoke(cli, ["--db", str(missing), *args])
    assert result.exit_code == 1 and "no database at" in _error_line(result)
    assert not (tmp_path / "typo").exists() and sorted(p.name for p in tmp_path.iterdir()) == []


def test_two_databases_in_one_folder_never_touch_each_others_files(tmp_path):
    folder = tmp_path / "shared"
    a, b, c = (open_db(folder / f"{name}.db") for name in ("a", "b", "c"))
    pdf = make_text_pdf(tmp_path / "same.pdf", pages=2)
    sa, sb = ingest_path(a, pdf).script_id, ingest_path(b, pdf).script_id
    assert sa == sb == 1  # the same script id in both: their files must still differ
    images_a = [p.image_path for p in script_store.get_pages(a, sa)]
    images_b = [p.image_path for p in script_store.get_pages(b, sb)]
    assert set(images_a).isdisjoint(images_b) and data_dir(a) != data_dir(b)
    assert script_store.get_script(a, sa)["source_path"] != script_store.get_script(b, sb)["source_path"]
    # a failed ingest into a third database and a delete in the first leave the second's files alone
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(pdf.read_bytes()[: len(pdf.read_bytes()) // 2])
    with pytest.raises(Exception):
        ingest_path(c, broken)
    script_store.delete_script(a, sa)
    assert all(Path(p).exists() for p in images_b)
    assert Path(script_store.get_script(b, sb)["source_path"]).exists()
    assert not any(Path(p).exists() for p in images_a)
