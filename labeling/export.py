"""Dataset exports: CSV, JSONL, Parquet, Fountain, CoNLL — one pluggable writer per format."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
from sqlite_utils import Database

from store import scripts as script_store
from store.export import EXPORT_COLUMNS, export_frame
from store.types import LABELS, SEED_SCHEME, ScriptlabelError


class ExportError(ScriptlabelError):
    pass


FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def neutralize_cell(value):
    """A text cell a spreadsheet would run as a formula (=, +, -, @, tab, CR first) gets a leading "'"."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def neutralize_formulas(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy whose text columns cannot inject formulas (OWASP "CSV injection"); numbers are left alone."""
    out = frame.copy()
    for column in out.columns:
        if out[column].dtype == object or pd.api.types.is_string_dtype(out[column]):
            values = out[column]
            risky = values.str.startswith(FORMULA_PREFIXES, na=False) if values.dtype != object else \
                values.map(lambda v: isinstance(v, str) and v.startswith(FORMULA_PREFIXES)).astype(bool)
            if risky.any():
                out.loc[risky, column] = "'" + values[risky].astype(str)
    return out


def _write_csv(frame: pd.DataFrame, out: Path) -> None:
    frame.to_csv(out, index=False)


def _write_jsonl(frame: pd.DataFrame, out: Path) -> None:
    frame.to_json(out, orient="records", lines=True, force_ascii=False)


def _write_parquet(frame: pd.DataFrame, out: Path) -> None:
    frame.to_parquet(out, index=False)


def _write_conll(frame: pd.DataFrame, out: Path) -> None:
    """CoNLL-style: one token per row with a BIO tag of its line's label; a blank row ends each line."""
    with out.open("w", encoding="utf-8") as handle:
        _conll_rows(frame, handle)


def _conll_rows(frame: pd.DataFrame, handle) -> None:
    for script_id, group in frame.groupby("script_id", sort=False):
        handle.write(f"-DOCSTART- -X- {script_id} O\n\n")
        for row in group.itertuples():
            label = row.label if isinstance(row.label, str) else "other"
            for i, token in enumerate(str(row.text).split()):
                handle.write(f"{token}\t{'B' if i == 0 else 'I'}-{label}\n")
            handle.write("\n")


def _write_fountain(frame: pd.DataFrame, out: Path) -> None:
    from labeling.ingest.formats.fountain import write_fountain

    if frame["script_id"].nunique() > 1:
        raise ExportError("a Fountain export holds one script: add --script ID (see `scriptlabel scripts`)")
    if frame["label"].isin({"S", "C", "D", "O"}).any():
        raise ExportError("Fountain needs the full label set: drop --scheme seed for a Fountain export")
    own = sorted({v for v in frame["label"] if isinstance(v, str) and v not in LABELS})
    if own:  # a class of the project's own has no Fountain element: refused rather than written as action
        raise ExportError(f"Fountain holds the seven built-in labels, and lines of this script carry the project's "
                          f"own class {', '.join(own)}: export CSV, JSONL or Parquet instead")
    rows = [(row.text, row.label if isinstance(row.label, str) else "action") for row in frame.itertuples()]
    out.write_text(write_fountain(rows), encoding="utf-8")


WRITERS: dict[str, Callable[[pd.DataFrame, Path], None]] = {
    "csv": _write_csv,
    "jsonl": _write_jsonl,
    "parquet": _write_parquet,
    "conll": _write_conll,
    "fountain": _write_fountain,
}


def build_export(db: Database, *, script_id: int | None = None, only_human: bool = False,
                 scheme: str = "project", hidden_scripts: set[int] | frozenset[int] = frozenset()) -> pd.DataFrame:
    """The whole export as one frame (previews and one-script formats); files stream by script instead."""
    _check_scheme(scheme)
    if script_id is not None and script_id in hidden_scripts:
        raise ExportError(f"no script with id {script_id}")
    if script_id is not None:
        script_store.get_script(db, script_id)
    frame = export_frame(db, script_id=script_id, only_human=only_human, in_scheme=scheme == "project")
    if hidden_scripts:
        frame = frame[~frame["script_id"].isin(list(hidden_scripts))].reset_index(drop=True)
    return _in_terms(frame, scheme)


# project: the label in the project's scheme (store/scheme.py: what people label with); full: the seven
# built-in labels (a merged class's label as the member the model prefers); seed: the study's S/C/D/O.
EXPORT_SCHEMES = ("project", "full", "seed")


def _in_terms(frame: pd.DataFrame, scheme: str) -> pd.DataFrame:
    if scheme == "seed":  # a class of the project's own has no seed letter: it stays as named
        frame["label"] = frame["label"].map(lambda v: SEED_SCHEME.get(v, v) if isinstance(v, str) else v)
    return frame


def _check_scheme(scheme: str) -> None:
    if scheme not in EXPORT_SCHEMES:
        raise ExportError(f"--scheme must be one of {', '.join(EXPORT_SCHEMES)}, not {scheme!r}")


CHUNK_LINES = 50_000


def iter_export_frames(db: Database, *, script_id: int | None = None, only_human: bool = False,
                       scheme: str = "project", hidden_scripts: set[int] | frozenset[int] = frozenset()
                       ) -> Iterator[pd.DataFrame]:
    """The export one script at a time, so a library of millions of lines is written in bounded memory."""
    _check_scheme(scheme)
    if script_id is not None and script_id in hidden_scripts:
        raise ExportError(f"no script with id {script_id}")
    if script_id is not None:
        script_store.get_script(db, script_id)
    if script_id is not None:
        chunks = [[script_id]]
    else:  # whole scripts, about CHUNK_LINES lines a read: few queries, bounded memory
        chunks, current, size = [], [], 0
        for s in script_store.list_scripts(db):
            if s.script_id in hidden_scripts:
                continue
            current.append(s.script_id)
            size += s.lines
            if size >= CHUNK_LINES:
                chunks.append(current)
                current, size = [], 0
        if current:
            chunks.append(current)
    for ids in chunks:
        frame = export_frame(db, script_ids=ids, only_human=only_human, in_scheme=scheme == "project")
        yield _in_terms(frame, scheme)


class _Stream:
    """Writes frames one after another into one file of a format."""

    def __init__(self, fmt: str, out: Path, *, raw_cells: bool = False):
        self.fmt, self.out, self.rows, self.raw_cells = fmt, out, 0, raw_cells
        self.handle = None
        self.parquet = None
        self.csv = None

    def write(self, frame: pd.DataFrame) -> None:
        if self.fmt == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = pa.Table.from_pandas(frame, schema=_parquet_schema(), preserve_index=False)
            if self.parquet is None:
                self.parquet = pq.ParquetWriter(self.out, table.schema)
            self.parquet.write_table(table)
        elif self.fmt == "csv":  # Arrow's C++ writer: about 5x pandas' to_csv on millions of rows
            import pyarrow as pa
            import pyarrow.csv as pcsv

            # spreadsheets run cells that start like a formula, unless told not to
            data = frame if self.raw_cells else neutralize_formulas(frame)
            table = pa.Table.from_pandas(data, schema=_parquet_schema(), preserve_index=False)
            if self.csv is None:  # the header as DESIGN.md names the columns, then Arrow's rows
                self.handle = self.out.open("wb")
                self.handle.write((",".join(EXPORT_COLUMNS) + "\n").encode())
                self.csv = pcsv.CSVWriter(self.handle, table.schema, write_options=pcsv.WriteOptions(
                    include_header=False, quoting_style="needed"))
            self.csv.write_table(table)
        else:
            if self.handle is None:
                self.handle = self.out.open("w", encoding="utf-8", newline="")
            if self.fmt == "jsonl":
                if len(frame):
                    text = frame.to_json(orient="records", lines=True, force_ascii=False)
                    self.handle.write(text if text.endswith("\n") else text + "\n")
            elif self.fmt == "conll":
                _conll_rows(frame, self.handle)
        self.rows += len(frame)

    def close(self) -> None:
        if self.fmt == "parquet" and self.parquet is None:
            self.write(pd.DataFrame({c: pd.Series(dtype=object) for c in EXPORT_COLUMNS}))
        if self.fmt in ("csv", "jsonl", "conll") and self.handle is None and self.csv is None:
            self.handle = self.out.open("w", encoding="utf-8", newline="")
            if self.fmt == "csv":
                self.handle.write(",".join(EXPORT_COLUMNS) + "\n")
        if self.csv is not None:
            self.csv.close()
        if self.parquet is not None:
            self.parquet.close()
        if self.handle is not None:
            self.handle.close()


def _parquet_schema():
    import pyarrow as pa

    types = {"script_id": pa.int64(), "line_id": pa.int64(), "line_no": pa.int64(), "source_line_no": pa.int64(),
             "page": pa.int64(), "sequence_id": pa.int64(), "confidence": pa.float64(), "indent": pa.float64(),
             "x0": pa.float64(), "y0": pa.float64(), "x1": pa.float64(), "y1": pa.float64(),
             "text_edited": pa.bool_()}
    return pa.schema([(c, types.get(c, pa.string())) for c in EXPORT_COLUMNS])


def export_dataset(db: Database, fmt: str, out: str | Path, *, script_id: int | None = None,
                   only_human: bool = False, scheme: str = "project", raw_cells: bool = False,
                   hidden_scripts: set[int] | frozenset[int] = frozenset()) -> dict:
    """Write the export and return {"format", "out", "rows"}. Checks the destination before writing.

    CSV, JSONL, Parquet and CoNLL stream script by script into a `.partial` file that replaces `out`
    only when complete; Fountain (one script) is written at once. CSV cells that start like a formula
    are prefixed with "'" unless `raw_cells`; scripts in `hidden_scripts` (restricted to other people)
    are left out.
    """
    if fmt not in WRITERS:
        raise ExportError(f"unknown export format {fmt!r}: use one of {', '.join(WRITERS)}")
    out = Path(out)
    if out.is_dir():
        raise ExportError(f"{out} is a directory; give a file path, e.g. {out / ('export.' + fmt)}")
    if not out.parent.exists():
        raise ExportError(f"{out.parent}: no such directory; create it first (mkdir -p {out.parent})")
    tmp = out.with_name(out.name + ".partial")
    try:
        if fmt == "fountain":
            # Fountain's elements are the built-in labels: the project's classes are written as those
            scheme = "full" if scheme == "project" else scheme
            frame = build_export(db, script_id=script_id, only_human=only_human, scheme=scheme,
                                 hidden_scripts=hidden_scripts)
            WRITERS[fmt](frame, tmp)
            rows = len(frame)
        else:
            stream = _Stream(fmt, tmp, raw_cells=raw_cells)
            try:
                for frame in iter_export_frames(db, script_id=script_id, only_human=only_human, scheme=scheme,
                                                hidden_scripts=hidden_scripts):
                    stream.write(frame)
            finally:
                stream.close()
            rows = stream.rows
        tmp.replace(out)
    except OSError as exc:  # read-only folder or mount, no permission, a full disk
        raise ExportError(f"{out}: cannot write the export ({_reason(exc)}); nothing was written — choose a "
                          "writable folder with free space") from exc
    finally:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
    return {"format": fmt, "out": str(out), "rows": int(rows)}


def _reason(exc: OSError) -> str:
    import errno

    reasons = {errno.ENOSPC: "the disk is full", errno.EROFS: "a read-only disk", errno.EACCES: "no permission",
               errno.EPERM: "no permission", errno.EDQUOT: "over the disk quota"}
    if exc.errno in reasons:
        return reasons[exc.errno]
    return "the disk is full" if "No space" in str(exc) else (exc.strerror or str(exc) or type(exc).__name__)


def export_bytes(db: Database, fmt: str, **filters) -> bytes:
    """The export as bytes (for a download button)."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / f"export.{fmt}"
        export_dataset(db, fmt, out, **filters)
        return out.read_bytes()
