"""Where `export --out` may write (issue 23 item 2): only a new or regular file that is not a SQLite database
nor one of the project's own files; an existing file only with --force; never a device, pipe or link."""

from __future__ import annotations

import os
import stat

import pytest

from conftest import db_dump, make_text_pdf
from test_cli_errors import error_line


@pytest.fixture
def stocked(cli, tmp_path):
    """A database with one labeled script; returns the database's dump to compare with afterwards."""
    cli.json_lines("ingest", str(make_text_pdf(tmp_path / "lighthouse.pdf", pages=2)))
    assert cli("label", "1", "scene_heading", "--annotator", "ana").exit_code == 0
    return db_dump(cli.db_file)


@pytest.mark.parametrize("suffix", ["", "-wal", "-shm", "-journal"])
def test_export_over_the_database_or_its_journal_is_refused(cli, stocked, suffix):
    target = cli.db_file.parent / (cli.db_file.name + suffix)
    existed = target.exists()
    for force in ([], ["--force"]):  # a typo away: refused with --force too
        message = error_line(cli("export", "--format", "csv", "--out", str(target), *force))
        assert target.name in message and "database" in message
        assert db_dump(cli.db_file) == stocked  # every label still there
        if suffix in ("-wal", "-shm"):  # SQLite itself removes these when the last connection closes
            assert not target.exists() or not target.read_bytes().startswith(b"script_id")
        else:
            assert target.exists() == existed


def test_export_into_the_media_folder_or_over_another_database_is_refused(cli, stocked, tmp_path):
    media = cli.db_file.parent / (cli.db_file.name + "-media")
    assert media.is_dir()
    message = error_line(cli("export", "--format", "jsonl", "--out", str(media / "x.jsonl")))
    assert "media" in message or "project's own" in message
    assert not (media / "x.jsonl").exists()
    other = tmp_path / "other.sqlite"
    import sqlite3

    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE keep(x)")
    conn.execute("INSERT INTO keep VALUES (42)")
    conn.commit()
    conn.close()
    message = error_line(cli("export", "--format", "csv", "--out", str(other), "--force"))
    assert "other.sqlite" in message and "SQLite database" in message
    assert sqlite3.connect(other).execute("SELECT x FROM keep").fetchone() == (42,)


def test_a_hard_link_to_the_database_is_the_database(cli, stocked, tmp_path):
    link = tmp_path / "innocent.csv"
    os.link(cli.db_file, link)
    message = error_line(cli("export", "--format", "csv", "--out", str(link), "--force"))
    assert "innocent.csv" in message
    assert db_dump(cli.db_file) == stocked


def test_an_existing_file_is_replaced_only_with_force(cli, stocked, tmp_path):
    out = tmp_path / "labels.csv"
    out.write_text("my notes\n")
    message = error_line(cli("export", "--format", "csv", "--out", str(out)))
    assert "labels.csv" in message and "--force" in message
    assert out.read_text() == "my notes\n"
    out.chmod(0o640)
    result = cli("export", "--format", "csv", "--out", str(out), "--force")
    assert result.exit_code == 0, result.stderr
    assert out.read_text().startswith("script_id,script_title,line_id")
    assert stat.S_IMODE(out.stat().st_mode) == 0o640  # the file it replaced keeps its rights
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".partial")) == []


def test_special_files_and_links_are_never_followed_or_replaced(cli, stocked, tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    link = tmp_path / "null.csv"
    link.symlink_to("/dev/null")
    dangling = tmp_path / "dangling.csv"
    dangling.symlink_to(tmp_path / "nowhere" / "x.csv")
    for target in (fifo, link, dangling, "/dev/null"):
        message = error_line(cli("export", "--format", "csv", "--out", str(target), "--force"))
        assert os.path.basename(str(target)) in message
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert os.path.islink(link) and os.readlink(link) == "/dev/null" and os.path.islink(dangling)
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    assert db_dump(cli.db_file) == stocked


def test_sequence_exports_follow_the_same_rules(cli, stocked, tmp_path):
    message = error_line(cli("export", "--what", "sequences", "--format", "csv", "--out", str(cli.db_file), "--force"))
    assert "database" in message
    assert db_dump(cli.db_file) == stocked
    out = tmp_path / "seq.csv"
    assert cli("export", "--what", "sequences", "--format", "csv", "--out", str(out)).exit_code == 0
    assert "exists" in error_line(cli("export", "--what", "sequences", "--format", "csv", "--out", str(out)))
