"""The database schema as numbered sqlite-utils migrations, each applied in its own transaction."""

from __future__ import annotations

import sqlite3

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

migrations = Migrations("scriptlabel")


def _execute_all(db: Database, script: str) -> None:
    # Not executescript(): it COMMITs first, which would break the migration's own transaction.
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            db.execute(buffer)
            buffer = ""
    if buffer.strip():
        raise ValueError(f"incomplete SQL statement in migration: {buffer[:80]!r}")


@migrations(name="0001_core")
def m0001_core(db: Database) -> None:
    _execute_all(
        db,
        """
        CREATE TABLE scripts (
            script_id INTEGER PRIMARY KEY,
            title TEXT NOT NULL,
            format TEXT NOT NULL,            -- pdf | txt | fountain | fdx
            source_name TEXT NOT NULL,
            source_sha256 TEXT NOT NULL,
            source_path TEXT,                -- copy kept beside the database (PDFs: for page crops)
            pages INTEGER NOT NULL DEFAULT 0,
            status TEXT NOT NULL DEFAULT 'ingesting',   -- ingesting | ready
            ocr_pages INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL
        );
        CREATE INDEX scripts_sha ON scripts(source_sha256);

        CREATE TABLE pages (
            script_id INTEGER NOT NULL REFERENCES scripts(script_id) ON DELETE CASCADE,
            page INTEGER NOT NULL,
            width REAL NOT NULL,
            height REAL NOT NULL,
            image_path TEXT,
            dpi INTEGER,
            text_source TEXT NOT NULL,       -- text_layer | ocr | text
            PRIMARY KEY (script_id, page)
        );

        CREATE TABLE sequences (
            sequence_id INTEGER PRIMARY KEY,
            script_id INTEGER NOT NULL REFERENCES scripts(script_id) ON DELETE CASCADE,
            code TEXT NOT NULL,
            title TEXT NOT NULL DEFAULT '',
            first_line_no INTEGER NOT NULL,
            last_line_no INTEGER NOT NULL,
            manual INTEGER NOT NULL DEFAULT 0  -- 1 once a person merged, split or renamed it
        );
        CREATE INDEX sequences_script ON sequences(script_id, first_line_no);

        CREATE TABLE lines (
            line_id INTEGER PRIMARY KEY,
            script_id INTEGER NOT NULL REFERENCES scripts(script_id) ON DELETE CASCADE,
            line_no INTEGER NOT NULL,
            page INTEGER NOT NULL,
            text TEXT NOT NULL,
            original_text TEXT NOT NULL,
            x0 REAL, y0 REAL, x1 REAL, y1 REAL,
            indent REAL NOT NULL,
            gap_before REAL NOT NULL,
            source_line_no INTEGER,
            ocr_confidence REAL,
            sequence_id INTEGER REFERENCES sequences(sequence_id) ON DELETE SET NULL,
            UNIQUE (script_id, line_no)
        );
        CREATE INDEX lines_sequence ON lines(sequence_id);

        -- Append-only: the latest event per line and annotator wins; undo appends an event.
        CREATE TABLE label_events (
            event_id INTEGER PRIMARY KEY,
            line_id INTEGER NOT NULL REFERENCES lines(line_id) ON DELETE CASCADE,
            label TEXT,                      -- NULL for an undo event
            annotator TEXT NOT NULL,
            source TEXT NOT NULL,            -- human | imported | rule
            action TEXT NOT NULL DEFAULT 'set',  -- set | undo
            undoes_event_id INTEGER,
            batch TEXT,                      -- shared by the events of one "apply to all" action
            suggested TEXT,                  -- the model's suggestion when the label was given
            suggested_version INTEGER,
            created_at TEXT NOT NULL
        );
        CREATE INDEX label_events_line ON label_events(line_id, event_id);
        CREATE INDEX label_events_source ON label_events(source, event_id);
        CREATE INDEX label_events_undoes ON label_events(undoes_event_id) WHERE undoes_event_id IS NOT NULL;

        -- Append-only history of text corrections (fixing OCR text is part of labeling).
        CREATE TABLE text_edits (
            edit_id INTEGER PRIMARY KEY,
            line_id INTEGER NOT NULL REFERENCES lines(line_id) ON DELETE CASCADE,
            text TEXT NOT NULL,
            annotator TEXT NOT NULL,
            created_at TEXT NOT NULL
        );

        CREATE TABLE model_versions (
            version INTEGER PRIMARY KEY,
            kind TEXT NOT NULL,              -- lines | complexity
            department TEXT,
            path TEXT NOT NULL,
            created_at TEXT NOT NULL,
            metrics TEXT NOT NULL DEFAULT '{}',
            n_labels INTEGER NOT NULL DEFAULT 0,
            is_current INTEGER NOT NULL DEFAULT 0
        );

        CREATE TABLE training_runs (
            run_id INTEGER PRIMARY KEY,
            kind TEXT NOT NULL,
            department TEXT,
            status TEXT NOT NULL,            -- queued | running | done | failed
            requested_at TEXT NOT NULL,
            started_at TEXT,
            finished_at TEXT,
            duration_s REAL,
            version INTEGER,
            n_labels INTEGER,
            metrics TEXT,
            error TEXT,
            pid INTEGER,
            trigger TEXT NOT NULL DEFAULT 'manual'
        );

        CREATE TABLE predictions (
            line_id INTEGER NOT NULL REFERENCES lines(line_id) ON DELETE CASCADE,
            version INTEGER NOT NULL,
            label TEXT NOT NULL,
            confidence REAL NOT NULL,
            margin REAL NOT NULL,
            probs TEXT NOT NULL,             -- JSON list in LABELS order
            PRIMARY KEY (line_id, version)
        );
        CREATE INDEX predictions_version ON predictions(version);

        CREATE TABLE queue_claims (
            line_id INTEGER PRIMARY KEY REFERENCES lines(line_id) ON DELETE CASCADE,
            annotator TEXT NOT NULL,
            expires_at REAL NOT NULL
        );

        CREATE TABLE departments (name TEXT PRIMARY KEY);
        INSERT INTO departments(name) VALUES ('overall'), ('animation'), ('fx'), ('lighting');

        CREATE TABLE sequence_ratings (
            rating_id INTEGER PRIMARY KEY,
            sequence_id INTEGER NOT NULL REFERENCES sequences(sequence_id) ON DELETE CASCADE,
            department TEXT NOT NULL,
            value INTEGER,                   -- 1..5; NULL for an undo
            annotator TEXT NOT NULL,
            created_at TEXT NOT NULL
        );
        CREATE INDEX sequence_ratings_seq ON sequence_ratings(sequence_id, department);

        CREATE TABLE sequence_tags (
            tag_event_id INTEGER PRIMARY KEY,
            sequence_id INTEGER NOT NULL REFERENCES sequences(sequence_id) ON DELETE CASCADE,
            tag TEXT NOT NULL,
            present INTEGER NOT NULL,
            annotator TEXT NOT NULL,
            created_at TEXT NOT NULL
        );

        CREATE TABLE sequence_predictions (
            sequence_id INTEGER NOT NULL REFERENCES sequences(sequence_id) ON DELETE CASCADE,
            department TEXT NOT NULL,
            version INTEGER NOT NULL,
            value INTEGER NOT NULL,
            expected REAL NOT NULL,
            uncertainty REAL NOT NULL,
            probs TEXT NOT NULL,
            PRIMARY KEY (sequence_id, department, version)
        );
        """
    )


@migrations(name="0100_label_events_from_clients")
def m0100_label_events_from_clients(db: Database) -> None:
    # Every action from the browser carries a client-made id; the UNIQUE index is what makes a resent
    # or replayed event a no-op (a rerun cut short, a reload, a retry after a lost response).
    _execute_all(
        db,
        """
        ALTER TABLE label_events ADD COLUMN client_event_id TEXT;
        ALTER TABLE label_events ADD COLUMN shown_at TEXT;
        ALTER TABLE label_events ADD COLUMN answered_at TEXT;
        CREATE UNIQUE INDEX label_events_client ON label_events(client_event_id, line_id)
            WHERE client_event_id IS NOT NULL;

        ALTER TABLE text_edits ADD COLUMN client_event_id TEXT;
        CREATE UNIQUE INDEX text_edits_client ON text_edits(client_event_id) WHERE client_event_id IS NOT NULL;

        -- A holder is one browser tab of one annotator: two tabs of one person never see the same line.
        ALTER TABLE queue_claims ADD COLUMN tab TEXT NOT NULL DEFAULT '';

        -- Flags an annotator raises on a line ("unsure", "bad OCR"), append-only; `cleared` flags end one.
        CREATE TABLE line_flags (
            flag_id INTEGER PRIMARY KEY,
            line_id INTEGER NOT NULL REFERENCES lines(line_id) ON DELETE CASCADE,
            kind TEXT NOT NULL,              -- unsure | bad_ocr | cleared
            note TEXT NOT NULL DEFAULT '',
            annotator TEXT NOT NULL,
            client_event_id TEXT UNIQUE,
            created_at TEXT NOT NULL
        );
        CREATE INDEX line_flags_line ON line_flags(line_id, flag_id);

        -- Settings of this database, e.g. its id, so a browser never sends one database's events to another.
        CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        INSERT OR IGNORE INTO meta(key, value) VALUES ('database_uid', lower(hex(randomblob(16))));
        """
    )


@migrations(name="0300_review_outcomes")
def m0300_review_outcomes(db: Database) -> None:
    _execute_all(
        db,
        """
        -- What a reviewer decided about a label the model contradicted (append-only): `confirmed` keeps
        -- the label, `fixed` came with a new label event. A line leaves the review queue once the
        -- outcome's label is its current label.
        CREATE TABLE review_outcomes (
            outcome_id INTEGER PRIMARY KEY,
            line_id INTEGER NOT NULL REFERENCES lines(line_id) ON DELETE CASCADE,
            outcome TEXT NOT NULL CHECK (outcome IN ('confirmed', 'fixed')),
            label TEXT NOT NULL,             -- the label the line has after the review
            previous_label TEXT,             -- the label that was reviewed
            suggested TEXT,                  -- what the review model proposed
            annotator TEXT NOT NULL,
            created_at TEXT NOT NULL
        );
        CREATE INDEX review_outcomes_line ON review_outcomes(line_id, outcome_id);
        """
    )


@migrations(name="0101_predictions_by_margin")
def m0101_predictions_by_margin(db: Database) -> None:
    # "The most uncertain lines of the whole library" as an indexed read, not a scan of every line.
    db.execute("CREATE INDEX IF NOT EXISTS predictions_margin ON predictions(version, margin)")


@migrations(name="0300_rating_undo")
def m0300_rating_undo(db: Database) -> None:
    # An undo is a row with value NULL pointing at the rating it takes back; the rating before it
    # (if any) is in force again. A NULL row without undoes_rating_id still clears the rating.
    _execute_all(
        db,
        """
        ALTER TABLE sequence_ratings ADD COLUMN undoes_rating_id INTEGER;
        CREATE INDEX sequence_ratings_undoes ON sequence_ratings(undoes_rating_id)
            WHERE undoes_rating_id IS NOT NULL;
        """
    )


@migrations(name="0102_review_outcomes_from_clients")
def m0102_review_outcomes_from_clients(db: Database) -> None:
    # A review decision sent from the labeling view is applied once, like a label (see 0100).
    _execute_all(
        db,
        """
        ALTER TABLE review_outcomes ADD COLUMN client_event_id TEXT;
        CREATE UNIQUE INDEX review_outcomes_client ON review_outcomes(client_event_id)
            WHERE client_event_id IS NOT NULL;
        """
    )
# --- 0200: durable ingest (issue 15). Self-contained: other migration series land beside these. ------

@migrations(name="0200_ingest_jobs")
def m0200_ingest_jobs(db: Database) -> None:
    _execute_all(
        db,
        """
        -- One row per ingest (CLI or app upload). A script in status 'ingesting' belongs to the job that
        -- created it; if that job's process is gone the script is rolled back whole (store.jobs).
        CREATE TABLE IF NOT EXISTS ingest_jobs (
            job_id INTEGER PRIMARY KEY AUTOINCREMENT,
            file_name TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'queued',   -- queued | running | done | failed
            pages_done INTEGER NOT NULL DEFAULT 0,
            pages_total INTEGER,
            error TEXT,                              -- written for people: no temp paths, no CLI flags
            script_id INTEGER,
            pid INTEGER,
            pid_start TEXT,                          -- the process's start time, so a reused pid is not taken for it
            staged_path TEXT,                        -- the uploaded bytes, kept until the job ends
            options TEXT NOT NULL DEFAULT '{}',
            result TEXT,                             -- JSON: pages, lines, sequences, low-confidence pages
            created_at TEXT NOT NULL,
            started_at TEXT,
            finished_at TEXT
        );
        CREATE INDEX IF NOT EXISTS ingest_jobs_status ON ingest_jobs(status);
        CREATE INDEX IF NOT EXISTS scripts_status ON scripts(status);
        """,
    )


@migrations(name="0200_model_pins")
def m0200_model_pins(db: Database) -> None:
    # A pinned version is never pruned (old versions beyond a retention count are).
    if "pinned" not in db["model_versions"].columns_dict:
        db.execute("ALTER TABLE model_versions ADD COLUMN pinned INTEGER NOT NULL DEFAULT 0")


AUTOINCREMENT_TABLES = (("scripts", "script_id"), ("sequences", "sequence_id"), ("lines", "line_id"))


@migrations(name="0200_autoincrement_ids", transactional=False)
def m0200_autoincrement_ids(db: Database) -> None:
    """Ids are never reused after a delete (an old link must not open another script): rebuild the
    tables with AUTOINCREMENT, keeping every row, index and trigger.

    Not transactional in sqlite-utils' sense: foreign keys must be off *outside* a transaction, or
    dropping the old table would cascade into labels. It runs its own transaction and is idempotent,
    so a crash between its commit and the migration record only repeats a no-op.
    """
    conn = db.conn
    if conn.in_transaction:
        conn.commit()
    conn.execute("PRAGMA foreign_keys=OFF")
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            for table, key in AUTOINCREMENT_TABLES:
                _rebuild_with_autoincrement(conn, table, key)
            problems = conn.execute("PRAGMA foreign_key_check").fetchall()
            if problems:
                raise sqlite3.IntegrityError(f"foreign key check failed after rebuilding tables: {problems[:3]}")
        except BaseException:
            conn.rollback()
            raise
        conn.commit()
    finally:
        conn.execute("PRAGMA foreign_keys=ON")


def _rebuild_with_autoincrement(conn: sqlite3.Connection, table: str, key: str) -> None:
    import re

    sql = conn.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", [table]).fetchone()[0]
    if "AUTOINCREMENT" in sql.upper():
        return
    new = f"_rebuild_{table}"
    pattern = re.compile(rf"(\b{key}\s+INTEGER\s+PRIMARY\s+KEY)\b", re.IGNORECASE)
    new_sql, count = pattern.subn(r"\1 AUTOINCREMENT", sql, count=1)
    if count != 1:
        raise ValueError(f"cannot find the primary key {key} of {table} to add AUTOINCREMENT")
    new_sql = re.sub(rf"^\s*CREATE\s+TABLE\s+(\"?){table}\1", f"CREATE TABLE {new}", new_sql, count=1,
                     flags=re.IGNORECASE)
    extras = [r[0] for r in conn.execute(
        "SELECT sql FROM sqlite_master WHERE tbl_name = ? AND type IN ('index', 'trigger') AND sql IS NOT NULL "
        "ORDER BY type, name", [table])]
    columns = ", ".join(f'"{r[1]}"' for r in conn.execute(f'PRAGMA table_info("{table}")'))
    conn.execute(new_sql)
    conn.execute(f'INSERT INTO {new} ({columns}) SELECT {columns} FROM "{table}"')
    conn.execute(f'DROP TABLE "{table}"')
    conn.execute(f'ALTER TABLE {new} RENAME TO "{table}"')
    for statement in extras:
        conn.execute(statement)


@migrations(name="0103_repredict_progress")
def m0103_repredict_progress(db: Database) -> None:
    # After a retrain, the script being labeled is re-predicted first and the rest of the library in the
    # background: how far that got, per run (the Models page shows it).
    _execute_all(
        db,
        """
        ALTER TABLE training_runs ADD COLUMN repredict_done INTEGER;
        ALTER TABLE training_runs ADD COLUMN repredict_total INTEGER;
        """
    )


@migrations(name="0400_accounts")
def m0400_accounts(db: Database) -> None:
    # Sign-in, roles, restricted scripts and the audit log (issue 11). Sessions keep only a hash of their
    # token, so a copy of the database does not let anyone sign in as someone else.
    _execute_all(
        db,
        """
        CREATE TABLE users (
            name TEXT PRIMARY KEY,           -- a local account's name, or an OIDC user's email
            role TEXT NOT NULL,              -- annotator | lead | admin
            password_hash TEXT,              -- scrypt$N$r$p$salt$hash; NULL: signs in through OIDC only
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );

        CREATE TABLE sessions (
            token_sha256 TEXT PRIMARY KEY,
            name TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE ON UPDATE CASCADE,
            created_at TEXT NOT NULL,
            expires_at REAL NOT NULL         -- unix time
        );
        CREATE INDEX sessions_name ON sessions(name);

        -- Wrong passwords per name (known or not), so guessing slows down across restarts and processes.
        CREATE TABLE sign_in_failures (
            name TEXT PRIMARY KEY,
            failures INTEGER NOT NULL,
            last_failure_at REAL NOT NULL,
            locked_until REAL NOT NULL
        );

        -- A script with rows here is visible only to the people named (and to admins).
        CREATE TABLE script_access (
            script_id INTEGER NOT NULL REFERENCES scripts(script_id) ON DELETE CASCADE,
            name TEXT NOT NULL,
            PRIMARY KEY (script_id, name)
        );

        -- Append-only. No foreign key on script_id: a deleted script's records stay.
        CREATE TABLE audit_log (
            audit_id INTEGER PRIMARY KEY,
            at TEXT NOT NULL,
            actor TEXT NOT NULL,
            action TEXT NOT NULL,
            script_id INTEGER,
            detail TEXT NOT NULL DEFAULT ''
        );
        CREATE INDEX audit_log_at ON audit_log(at);
        """
    )


@migrations(name="0104_script_line_counts")
def m0104_script_line_counts(db: Database) -> None:
    # The Scripts page and pickers list a library of thousands of scripts: a stored count per script,
    # kept by the writes that add lines, instead of counting millions of lines on every page run.
    _execute_all(
        db,
        """
        ALTER TABLE scripts ADD COLUMN line_count INTEGER NOT NULL DEFAULT 0;
        UPDATE scripts SET line_count = (SELECT COUNT(*) FROM lines l WHERE l.script_id = scripts.script_id);
        """
    )


@migrations(name="1400_run_params")
def m1400_run_params(db: Database) -> None:
    # A run carries the parameters it was requested with (e.g. which complexity models to compare), so the
    # worker reads them from its row instead of from an environment variable. Migration 0510 (versions and
    # bulk accept) adds the same column: whichever comes first adds it.
    if "params" not in db["training_runs"].columns_dict:
        _execute_all(db, "ALTER TABLE training_runs ADD COLUMN params TEXT;")


# --- 0510: versions people can trust, safe bulk-accept (issue 16) ----------------------------------

@migrations(name="0510_versions_and_bulk_accept")
def m0510_versions_and_bulk_accept(db: Database) -> None:
    # What a training run was asked to do and with which settings (JSON); 1400_run_params adds the same
    # column: whichever comes first adds it.
    if "params" not in db["training_runs"].columns_dict:
        db.execute("ALTER TABLE training_runs ADD COLUMN params TEXT")
    _execute_all(
        db,
        """
        -- Why a version is (or is not) current: {"decision": "promoted"|"candidate"|"manual", "reason", the
        -- paired comparison with the version that was current}. NULL for versions made before this.
        ALTER TABLE model_versions ADD COLUMN promotion TEXT;

        -- A version a person rolled back to stays current until someone unpins it: retrains then only add
        -- candidates. One row per kind and department; version 0 is the shipped base model.
        CREATE TABLE current_pins (
            kind TEXT NOT NULL,
            department TEXT NOT NULL DEFAULT '',
            version INTEGER NOT NULL,
            pinned_by TEXT NOT NULL,
            pinned_at TEXT NOT NULL,
            PRIMARY KEY (kind, department)
        );

        -- "Accept every suggestion above p" on a script or a page: one row per batch (its id comes from
        -- the caller, so a resent confirmation is a no-op); its label events carry source 'accepted' and
        -- batch = batch_id. Undo appends undo events and stamps undone_at.
        CREATE TABLE accept_batches (
            batch_id TEXT PRIMARY KEY,
            script_id INTEGER NOT NULL REFERENCES scripts(script_id) ON DELETE CASCADE,
            page INTEGER,
            above REAL NOT NULL,
            model_version INTEGER NOT NULL,
            lines INTEGER NOT NULL,
            expected_errors REAL NOT NULL,
            annotator TEXT NOT NULL,
            created_at TEXT NOT NULL,
            undone_at TEXT,
            undone_by TEXT
        );
        CREATE INDEX accept_batches_script ON accept_batches(script_id, created_at);
        CREATE INDEX IF NOT EXISTS label_events_batch ON label_events(batch) WHERE batch IS NOT NULL;
        """
    )


@migrations(name="0500_suggested_confidence")
def m0500_suggested_confidence(db: Database) -> None:
    # The confidence a person saw next to the suggestion, kept with their label: with `suggested` it
    # is the record a reliability diagram needs (shown 90% → right 90% of the time?). Predictions of
    # old versions are pruned, so it is copied when the label is stored, by a trigger, whatever path
    # stored the label (key press, group label, CLI, import).
    from store.types import LABELS

    index = " ".join(f"WHEN '{label}' THEN {i}" for i, label in enumerate(LABELS))
    shown = f"""(SELECT json_extract(p.probs, '$[' || (CASE {{e}}.suggested {index} END) || ']')
                 FROM predictions p WHERE p.line_id = {{e}}.line_id AND p.version = {{e}}.suggested_version)"""
    _execute_all(
        db,
        f"""
        ALTER TABLE label_events ADD COLUMN suggested_confidence REAL;
        UPDATE label_events SET suggested_confidence = {shown.format(e='label_events')}
            WHERE suggested IS NOT NULL AND suggested_version IS NOT NULL;
        CREATE TRIGGER label_events_suggested_confidence AFTER INSERT ON label_events
            WHEN NEW.suggested IS NOT NULL AND NEW.suggested_version IS NOT NULL
                 AND NEW.suggested_confidence IS NULL
        BEGIN
            UPDATE label_events SET suggested_confidence = {shown.format(e='NEW')}
                WHERE event_id = NEW.event_id;
        END;
        """
    )


@migrations(name="2300_sign_in_client_failures")
def m2300_sign_in_client_failures(db: Database) -> None:
    # Wrong passwords per client address, beside the count per name: one address trying many names
    # is slowed down too (issue 23).
    _execute_all(
        db,
        """
        CREATE TABLE sign_in_client_failures (
            client TEXT PRIMARY KEY,
            failures INTEGER NOT NULL,
            last_failure_at REAL NOT NULL,
            locked_until REAL NOT NULL
        );
        """
    )


@migrations(name="2400_team")
def m2400_team(db: Database) -> None:
    # Issue 24: overlap (one line held by N people at once), adjudication as its own label source,
    # project settings, work assigned to people.
    _execute_all(
        db,
        """
        -- A claim is one holder's (person × tab) hold on a line: an overlap line is held by up to N people.
        -- Claims live minutes; the old ones are simply dropped.
        DROP TABLE queue_claims;
        CREATE TABLE queue_claims (
            line_id INTEGER NOT NULL REFERENCES lines(line_id) ON DELETE CASCADE,
            annotator TEXT NOT NULL,
            tab TEXT NOT NULL DEFAULT '',
            expires_at REAL NOT NULL,
            PRIMARY KEY (line_id, annotator, tab)
        );
        CREATE INDEX queue_claims_expires ON queue_claims(expires_at);

        -- Project-wide settings a lead changes (the overlap share, ...): key → JSON.
        CREATE TABLE project_settings (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL,
            updated_by TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );

        -- Work an admin gave a person: a whole script (page NULL) or one page of it; their queue takes it first.
        CREATE TABLE work_assignments (
            assignment_id INTEGER PRIMARY KEY AUTOINCREMENT,
            name TEXT NOT NULL,
            script_id INTEGER NOT NULL REFERENCES scripts(script_id) ON DELETE CASCADE,
            page INTEGER,
            assigned_by TEXT NOT NULL,
            created_at TEXT NOT NULL
        );
        CREATE UNIQUE INDEX work_assignments_unique ON work_assignments(name, script_id, IFNULL(page, 0));

        -- A lead's decision on a rating people disagree on is a rating of its own kind.
        ALTER TABLE sequence_ratings ADD COLUMN source TEXT NOT NULL DEFAULT 'human';

        -- Adjudications used to be human labels by "adjudicator:NAME": they become their own source.
        UPDATE label_events SET source = 'adjudicated', annotator = substr(annotator, 13)
            WHERE annotator LIKE 'adjudicator:%' AND source = 'human';
        """
    )


@migrations(name="2110_label_scheme")
def m2110_label_scheme(db: Database) -> None:
    # A project's label scheme (store/scheme.py): its classes with their keys, and the built-in labels merged
    # into a class other than their own. Empty tables read as the full scheme; the seven built-in classes
    # are written here so the Label page's keys come from one place. Labels stay stored as pressed.
    from store.types import PRESETS

    _execute_all(
        db,
        """
        CREATE TABLE scheme_classes (
            name TEXT PRIMARY KEY COLLATE NOCASE,
            key TEXT NOT NULL UNIQUE,
            display TEXT NOT NULL,
            position INTEGER NOT NULL,
            created_at TEXT NOT NULL
        );
        CREATE TABLE scheme_merges (
            builtin TEXT PRIMARY KEY,
            class_name TEXT NOT NULL REFERENCES scheme_classes(name) COLLATE NOCASE
        );
        """
    )
    for position, (name, key, display, _members) in enumerate(PRESETS["full"]):
        db.execute("INSERT INTO scheme_classes(name, key, display, position, created_at) "
                   "VALUES (?, ?, ?, ?, datetime('now'))", [name, key, display, position])


@migrations(name="2111_label_rules")
def m2111_label_rules(db: Database) -> None:
    # Rules people write (labeling/label_rules.py): a pattern over a line's text, optionally an indent range,
    # that suggests a class. Removing one stamps removed_at (the audit log and its history stay readable).
    # `predictions.classes`: the classes a row's probabilities are over (JSON list), NULL = LABELS' order.
    _execute_all(
        db,
        """
        CREATE TABLE label_rules (
            rule_id INTEGER PRIMARY KEY,
            class_name TEXT NOT NULL,
            pattern TEXT NOT NULL,
            indent_min REAL,
            indent_max REAL,
            created_by TEXT NOT NULL,
            created_at TEXT NOT NULL,
            removed_by TEXT,
            removed_at TEXT
        );
        ALTER TABLE predictions ADD COLUMN classes TEXT;
        """
    )


@migrations(name="2500_sequence_edits")
def m2500_sequence_edits(db: Database) -> None:
    # Splits and merges, each with what it takes to undo it (issue 25): the state before (`detail`, JSON)
    # and the client's id of the click, UNIQUE so a click delivered twice splits once.
    _execute_all(
        db,
        """
        CREATE TABLE sequence_edits (
            edit_id INTEGER PRIMARY KEY,
            script_id INTEGER NOT NULL REFERENCES scripts(script_id) ON DELETE CASCADE,
            kind TEXT NOT NULL CHECK (kind IN ('split', 'merge')),
            sequence_id INTEGER NOT NULL,
            other_sequence_id INTEGER NOT NULL,
            at_line_no INTEGER NOT NULL,
            code TEXT NOT NULL,
            other_code TEXT NOT NULL,
            other_title TEXT NOT NULL,
            detail TEXT NOT NULL,
            client_id TEXT UNIQUE,
            annotator TEXT NOT NULL,
            created_at TEXT NOT NULL,
            undone_at TEXT,
            undone_by TEXT
        );
        CREATE INDEX sequence_edits_script ON sequence_edits(script_id, edit_id);
        """
    )


@migrations(name="2501_ingest_job_client_id")
def m2501_ingest_job_client_id(db: Database) -> None:
    # The id of the chosen file in the browser (issue 25: uploads start on choosing): every rerun of the
    # page sees the same chosen file again, and it must start one job, not one per rerun.
    _execute_all(
        db,
        """
        ALTER TABLE ingest_jobs ADD COLUMN client_id TEXT;
        CREATE UNIQUE INDEX ingest_jobs_client ON ingest_jobs(client_id) WHERE client_id IS NOT NULL;
        """
    )


@migrations(name="2200_page_flags")
def m2200_page_flags(db: Database) -> None:
    # A scanned page that gives no lines (a blank back, noise, a page tesseract gave up or ran out of
    # time on) is stored flagged with its reason instead of refusing the whole script.
    _execute_all(
        db,
        """
        ALTER TABLE pages ADD COLUMN flag TEXT;
        ALTER TABLE pages ADD COLUMN flag_note TEXT NOT NULL DEFAULT '';
        CREATE INDEX pages_flagged ON pages(script_id) WHERE flag IS NOT NULL;
        """
    )


@migrations(name="2510_sequence_version")
def m2510_sequence_version(db: Database) -> None:
    # Each change to a sequence (rename, split, merge, their undo) counts up its version, and a click on
    # the Sequences page carries the version it saw (issue 25): a click that arrives after the sequence
    # changed (a double click, a second tab) is refused instead of splitting or merging something else.
    _execute_all(db, "ALTER TABLE sequences ADD COLUMN version INTEGER NOT NULL DEFAULT 1;")


@migrations(name="2511_password_reset_links")
def m2511_password_reset_links(db: Database) -> None:
    # An admin's password reset gives a one-time link, not a password to pass on (issue 24): only the
    # token's hash is kept, with its expiry and when it was used.
    _execute_all(
        db,
        """
        CREATE TABLE password_resets (
            token_sha256 TEXT PRIMARY KEY,
            name TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
            created_by TEXT NOT NULL,
            created_at REAL NOT NULL,
            expires_at REAL NOT NULL,
            used_at REAL
        );
        CREATE INDEX password_resets_name ON password_resets(name);
        """
    )
