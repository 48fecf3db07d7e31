"""`scriptlabel import PATH`: human labels from a file, every row checked first, then all written or none.

Accepted files:
- the project's own CSV/JSONL/Parquet export (`line_id, label, annotator`, optionally `label_source`,
  `labeled_at`, `text`, `script_title`, `line_no`): rows whose label came from the model or a rule
  are not a person's labels and are skipped (reported as rejected, with the reason);
- a minimal CSV/JSONL with `line_id, label, annotator`, or `script_title, line_no, label, annotator`
  to label another database's copy of the same script;
- Prodigy-style JSONL (`{"text", "label" or "accept": [...], "answer", "meta": {"line_id"} or
  {"script_title", "line_no"}, "_annotator_id"}`): only accepted answers are labels.

A line is found by `line_id` when that line exists and agrees with the row's `script_title`/`text`
(when given); else by `script_title + line_no`. Any row that names no line, an unknown label or a line
whose text differs stops the whole import with one message naming the file and row.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path

from sqlite_utils import Database

from store import imports as import_store
from store import labels as label_store
from store.scheme import load_scheme
from store.types import LABEL_SOURCES, BadAnnotatorError, ScriptlabelError, UnknownLabelError, check_annotator

IMPORTABLE_SOURCES = ("human", "imported")
MAX_ID = 2**63 - 1  # SQLite's integers are signed 64-bit
DEFAULT_MAX_BYTES = 50 * 1024 * 1024  # as the upload limit (Settings.max_upload_mb)


class LabelImportError(ScriptlabelError):
    """The file cannot be imported; nothing was written."""


@dataclass(frozen=True)
class ImportRow:
    row_no: int  # 1-based data row (CSV: the header is row 0)
    line_id: int
    label: str
    annotator: str
    source: str
    labeled_at: str | None


@dataclass
class ImportReport:
    file: str
    rows: int = 0
    imported: int = 0
    unchanged: int = 0
    rejected: int = 0
    reasons: dict[str, int] = field(default_factory=dict)

    def reject(self, reason: str) -> None:
        self.rejected += 1
        self.reasons[reason] = self.reasons.get(reason, 0) + 1

    def as_json(self) -> dict:
        return {"file": self.file, "rows": self.rows, "imported": self.imported, "unchanged": self.unchanged,
                "rejected": self.rejected, "reasons": self.reasons}


# --- reading ---------------------------------------------------------------------------------------

def read_records(path: Path, *, max_bytes: int = DEFAULT_MAX_BYTES) -> list[dict]:
    """The file's rows as dicts (CSV, JSONL or Parquet, by extension; else sniffed); a file over `max_bytes`
    (the upload limit) is refused, and a CSV cell may be as long as the file may be."""
    if not path.exists():
        raise LabelImportError(f"{path}: no such file")
    if path.is_dir():
        raise LabelImportError(f"{path} is a directory; give a CSV or JSONL file")
    size = path.stat().st_size
    if size > max_bytes:
        raise LabelImportError(f"{path}: {size / 2**20:.1f} MB, over the limit of {max_bytes / 2**20:.0f} MB; split "
                               "the file, or raise the limit with SCRIPTLABEL_MAX_UPLOAD_MB")
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        import pandas as pd

        try:
            frame = pd.read_parquet(path)
        except Exception as exc:  # pyarrow raises many types for a damaged file
            raise LabelImportError(f"{path}: not a readable Parquet file ({exc})") from None
        return [{k: (None if _missing(v) else v) for k, v in row.items()} for row in frame.to_dict("records")]
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise LabelImportError(f"{path}: not UTF-8 text; export it again as UTF-8 CSV or JSONL") from None
    if suffix in (".jsonl", ".ndjson", ".json") or (suffix != ".csv" and text.lstrip().startswith("{")):
        records = []
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise LabelImportError(f"{path} line {number}: not valid JSON ({exc.msg}); "
                                       "each line must be one JSON object") from None
            if not isinstance(record, dict):
                raise LabelImportError(f"{path} line {number}: a JSON object is needed, not {type(record).__name__}")
            records.append(record)
        return records
    # csv's own cell limit (128 KiB) is raised to the file limit: a long cell is read, not a traceback
    csv.field_size_limit(max(csv.field_size_limit(), max_bytes))
    reader = csv.DictReader(text.splitlines())
    try:
        rows = list(reader)
    except csv.Error as exc:
        raise LabelImportError(f"{path} row {reader.line_num}: not readable as CSV ({exc}); export it again as CSV"
                               ) from None
    if rows and None in rows[0]:
        raise LabelImportError(f"{path} row 1: more values than header columns; is it a CSV export?")
    return rows


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and value != value) or (isinstance(value, str) and not value.strip())


def _int(value, what: str, where: str) -> int | None:
    if _missing(value):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise LabelImportError(f"{where}: {what} must be a whole number, not {value!r}") from None
    if number != number or number in (float("inf"), float("-inf")) or number != int(number):
        raise LabelImportError(f"{where}: {what} must be a whole number, not {value!r}")
    whole = int(value) if isinstance(value, int) or (isinstance(value, str) and value.strip().isdigit()) \
        else int(number)
    if not 1 <= whole <= MAX_ID:
        raise LabelImportError(f"{where}: {what} {value} is not a valid id (1 to {MAX_ID}); is the column right?")
    return whole


def _annotator(value, where: str) -> str:
    try:
        return check_annotator(value)
    except BadAnnotatorError as exc:
        raise LabelImportError(f"{where}: {exc}") from None


def _timestamp(value, where: str) -> str | None:
    if _missing(value):
        return None
    try:
        stamp = dt.datetime.fromisoformat(str(value))
    except ValueError:
        raise LabelImportError(f"{where}: labeled_at {value!r} is not an ISO time (e.g. 2026-01-31T12:00:00+00:00)"
                               ) from None
    return str(value) if stamp.tzinfo else stamp.replace(tzinfo=dt.timezone.utc).isoformat()


def _prodigy(record: dict) -> bool:
    return "answer" in record or "accept" in record or "_input_hash" in record


# --- validation ------------------------------------------------------------------------------------

def _refuse_contradictions(path: Path, rows: list[ImportRow]) -> None:
    """One person gives one line one label in a file: two different ones are a mistake to fix, not a choice
    to make silently (the later row would win)."""
    first: dict[tuple[int, str], ImportRow] = {}
    for row in rows:
        seen = first.setdefault((row.line_id, row.annotator), row)
        if seen.label != row.label:
            raise LabelImportError(
                f"{path} rows {seen.row_no} and {row.row_no}: line {row.line_id} gets two different labels from "
                f"{row.annotator} ({seen.label}, {row.label}); keep one row per line and person, nothing was imported")


class _Resolver:
    """Finds the line a row names (see the module docstring), with lookups cached per file."""

    def __init__(self, db: Database, records: list[dict]):
        self.db = db
        ids = []
        for record in records:
            meta = record.get("meta") if isinstance(record.get("meta"), dict) else {}
            value = record.get("line_id", meta.get("line_id"))
            try:
                number = int(float(value))
            except (TypeError, ValueError, OverflowError):
                continue
            if 1 <= number <= MAX_ID:  # others are refused with the row's number in validate()
                ids.append(number)
        self.by_id = import_store.lines_by_id(db, ids)
        self.titles = import_store.scripts_by_title(db)
        self.numbers: dict[int, dict[int, dict]] = {}

    def resolve(self, where: str, line_id: int | None, title: str | None, line_no: int | None,
                text: str | None) -> int:
        known = self.by_id.get(line_id) if line_id is not None else None
        if known is not None and known["status"] == "ready" and (title is None or known["script_title"] == title) \
                and (text is None or known["text"] == text):
            return line_id
        if title is not None and line_no is not None:
            scripts = self.titles.get(title)
            if not scripts:
                raise LabelImportError(f"{where}: no script titled {title!r} in this database; ingest it first "
                                       "(see `scriptlabel scripts`)")
            if len(scripts) > 1:
                raise LabelImportError(f"{where}: {len(scripts)} scripts are titled {title!r} (ids "
                                       f"{', '.join(map(str, scripts))}); rename one or import by line_id")
            lines = self.numbers.setdefault(scripts[0], import_store.lines_by_number(self.db, scripts[0]))
            line = lines.get(line_no)
            if line is None:
                raise LabelImportError(f"{where}: script {title!r} has no line {line_no}")
            if text is not None and line["text"] != text:
                raise LabelImportError(f"{where}: line {line_no} of {title!r} reads {line['text']!r}, the file says "
                                       f"{text!r}; the file is from another version of the script")
            return int(line["line_id"])
        if known is not None and text is not None and known["text"] != text:
            raise LabelImportError(f"{where}: line {line_id} reads {known['text']!r}, the file says {text!r}; "
                                   "the file is from another database: add script_title and line_no columns")
        if line_id is not None:
            raise LabelImportError(f"{where}: no line {line_id} in this database; the file may come from another "
                                   "database: add script_title and line_no columns")
        raise LabelImportError(f"{where}: no line_id (or script_title + line_no) to say which line it labels")


def validate(db: Database, path: Path, records: list[dict], *, default_annotator: str = "import"
             ) -> tuple[list[ImportRow], ImportReport]:
    """Check every row; returns the rows to consider and a report counting the rejected ones."""
    report = ImportReport(file=str(path), rows=len(records))
    if records and not any(k in records[0] for k in ("label", "accept", "answer")):
        raise LabelImportError(f"{path}: no label column (found {', '.join(map(str, records[0]))}); "
                               "give line_id, label, annotator")
    resolver = _Resolver(db, records)
    scheme = load_scheme(db)
    rows = []
    for number, record in enumerate(records, 1):
        where = f"{path} row {number}"
        meta = record.get("meta") if isinstance(record.get("meta"), dict) else {}
        if _prodigy(record):
            if record.get("answer", "accept") != "accept":
                report.reject(f"prodigy answer {record.get('answer')!r}, not accept")
                continue
            label = record.get("label")
            accepted = record.get("accept")
            if _missing(label) and isinstance(accepted, list):
                if len(accepted) != 1:
                    raise LabelImportError(f"{where}: a line takes one label; accept holds {accepted!r}")
                label = accepted[0]
            annotator = _annotator(record.get("_annotator_id") or record.get("annotator") or default_annotator,
                                   where)
            source = "human"
        else:
            label = record.get("label")
            source = record.get("label_source")
            source = "human" if _missing(source) else str(source).strip()
            if source not in LABEL_SOURCES:
                raise LabelImportError(f"{where}: label_source {source!r} is not one of {', '.join(LABEL_SOURCES)}")
            if source not in IMPORTABLE_SOURCES:
                report.reject(f"label_source {source}: a suggestion, not a person's label")
                continue
            annotator = record.get("annotator")
            annotator = _annotator(default_annotator if _missing(annotator) else annotator, where)
        if _missing(label):
            report.reject("no label")
            continue
        try:
            label = scheme.parse(str(label))  # the project's classes, or built-in labels (read through them)
        except UnknownLabelError:
            hint = (" (a --scheme seed export: its S/C/D/O labels import into a project that uses the seed "
                    "scheme, `scriptlabel scheme use seed`; or export with --scheme full)"
                    if str(label) in {"S", "C", "D", "O"} else "")
            raise LabelImportError(f"{where}: unknown label {str(label)[:40]!r}; use one of "
                                   f"{', '.join(scheme.names)}{hint}") from None
        title = record.get("script_title", meta.get("script_title"))
        text = record.get("text", meta.get("text") if not _prodigy(record) else record.get("text"))
        line_id = resolver.resolve(
            where, _int(record.get("line_id", meta.get("line_id")), "line_id", where),
            None if _missing(title) else str(title), _int(record.get("line_no", meta.get("line_no")), "line_no", where),
            None if text is None or (isinstance(text, float) and text != text) else str(text))
        rows.append(ImportRow(row_no=number, line_id=line_id, label=label, annotator=annotator, source=source,
                              labeled_at=_timestamp(record.get("labeled_at"), where)))
    return rows, report


def import_labels(db: Database, path: str | Path, *, default_annotator: str = "import",
                  max_bytes: int = DEFAULT_MAX_BYTES) -> ImportReport:
    """Validate the whole file, then write its new labels in one transaction (or raise, writing nothing)."""
    path = Path(path)
    records = read_records(path, max_bytes=max_bytes)
    if not records:
        raise LabelImportError(f"{path}: no rows to import")
    rows, report = validate(db, path, records, default_annotator=default_annotator)
    _refuse_contradictions(path, rows)
    current = label_store.annotator_labels(db)
    # (line, annotator) → (label, source) in force; a row that repeats it changes nothing.
    state = {(int(r.line_id), r.annotator): (r.label, r.source) for r in current.itertuples()}
    new = []
    for row in rows:
        key = (row.line_id, row.annotator)
        if state.get(key) == (row.label, row.source):
            report.unchanged += 1
            continue
        state[key] = (row.label, row.source)
        new.append({"line_id": row.line_id, "label": row.label, "annotator": row.annotator, "source": row.source,
                    "created_at": row.labeled_at})
    # No batch id: undoing one imported label must not take back the whole file.
    import_store.write_labels(db, new)
    report.imported = len(new)
    return report
