"""Dataset exports: CSV, JSONL, Parquet, XLSX, Fountain, CoNLL — one pluggable writer per format.

Every format keeps each line's text exactly as stored; XLSX is the one for spreadsheets (string cells).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
from sqlite_utils import Database

from labeling.export_file import ExportError, write_atomically
from store import scripts as script_store
from store.export import EXPORT_COLUMNS, export_frame
from store.types import LABELS, SEED_SCHEME

__all__ = ["ExportError", "WRITERS", "build_export", "export_bytes", "export_dataset", "iter_export_frames"]


def _write_csv(frame: pd.DataFrame, out: Path) -> None:
    frame.to_csv(out, index=False)


class XlsxSheet:
    """Rows into one worksheet of an .xlsx file, streamed (xlsxwriter's constant-memory mode).

    Every text is a string cell, never a formula, a number or a link (a line `=SUM(A1)` or `-- aren't I a
    lawyer?` is shown as written and nothing is evaluated); numbers are numbers, blanks are empty cells.
    A sheet holds at most 1,048,576 rows and a cell 32,767 characters: beyond that the export is refused
    rather than cut.
    """

    MAX_ROWS = 1_048_576
    MAX_CHARS = 32_767

    def __init__(self, out: Path, columns: list[str], *, sheet: str):
        import xlsxwriter

        self.book = xlsxwriter.Workbook(str(out), {
            "constant_memory": True, "strings_to_numbers": False, "strings_to_formulas": False,
            "strings_to_urls": False})
        self.sheet = self.book.add_worksheet(sheet)
        self.columns = list(columns)
        for col, name in enumerate(self.columns):
            self.sheet.write_string(0, col, name)
        self.row = 1

    def write(self, frame: pd.DataFrame) -> None:
        if self.row + len(frame) > self.MAX_ROWS:
            raise ExportError(f"an XLSX sheet holds at most {self.MAX_ROWS - 1:,} rows and this export has more: "
                              "export one script at a time (--script ID) or choose csv or parquet")
        # One writer per column, chosen once from its dtype: a cell call per value is the whole cost here.
        columns = [self._column(frame[name], col) for col, name in enumerate(self.columns)]
        for offset in range(len(frame)):
            row = self.row + offset
            for col, (values, write) in enumerate(columns):
                value = values[offset]
                if value is not None:
                    write(row, col, value)
        self.row += len(frame)

    def _column(self, series: pd.Series, col: int):
        """(the column's values with None for blanks, the sheet method that writes one of them)."""
        missing = series.isna().to_numpy()
        if pd.api.types.is_bool_dtype(series):
            values, write = series.astype(object).to_list(), self.sheet.write_boolean
        elif pd.api.types.is_numeric_dtype(series):
            values, write = series.astype(float).to_list(), self.sheet.write_number
        else:
            values = series.astype(object).to_list()
            too_long = [i for i, v in enumerate(values) if isinstance(v, str) and len(v) > self.MAX_CHARS]
            if too_long:
                raise ExportError(f"row {self.row + too_long[0]}, column {self.columns[col]}: "
                                  f"{len(values[too_long[0]]):,} characters, over the {self.MAX_CHARS:,} an XLSX cell "
                                  "holds; choose csv or parquet for this export")
            values = [v if isinstance(v, str) else str(v) for v in values]
            write = self.sheet.write_string
        return [None if gone else value for value, gone in zip(values, missing)], write

    def close(self) -> None:
        self.book.close()


def write_xlsx(frame: pd.DataFrame, out: Path, *, sheet: str = "lines") -> None:
    xlsx = XlsxSheet(out, list(frame.columns), sheet=sheet)
    try:
        xlsx.write(frame)
    finally:
        xlsx.close()


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
    "xlsx": write_xlsx,
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

    def __init__(self, fmt: str, out: Path):
        self.fmt, self.out, self.rows = fmt, out, 0
        self.handle = None
        self.parquet = None
        self.csv = None
        self.xlsx = None

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

            # every text exactly as stored (a spreadsheet user takes the XLSX export instead)
            table = pa.Table.from_pandas(frame, schema=_parquet_schema(), preserve_index=False)
            if self.csv is None:  # the header as DESIGN.md names the columns, then Arrow's rows
                self.handle = self.out.open("wb")
                self.handle.write((",".join(EXPORT_COLUMNS) + "\n").encode())
                self.csv = pcsv.CSVWriter(self.handle, table.schema, write_options=pcsv.WriteOptions(
                    include_header=False, quoting_style="needed"))
            self.csv.write_table(table)
        elif self.fmt == "xlsx":
            if self.xlsx is None:
                self.xlsx = XlsxSheet(self.out, EXPORT_COLUMNS, sheet="lines")
            self.xlsx.write(frame)
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
        if self.fmt == "xlsx" and self.xlsx is None:
            self.xlsx = XlsxSheet(self.out, EXPORT_COLUMNS, sheet="lines")
        if self.xlsx is not None:
            self.xlsx.close()
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
                   only_human: bool = False, scheme: str = "project", force: bool = False,
                   hidden_scripts: set[int] | frozenset[int] = frozenset()) -> dict:
    """Write the export and return {"format", "out", "rows"}. Checks the destination before writing.

    Every format keeps each line's text exactly as stored (XLSX as string cells, nothing evaluated).
    `out` must be a new file, or a regular file to replace with `force`, never a database, one of the
    project's own files, a device, a pipe or a link (labeling/export_file.py). CSV, JSONL, Parquet, XLSX
    and CoNLL stream script by script into a temporary file renamed over `out` only when complete;
    Fountain (one script) is written at once. Scripts in `hidden_scripts` (restricted to other people)
    are left out.
    """
    if fmt not in WRITERS:
        raise ExportError(f"unknown export format {fmt!r}: use one of {', '.join(WRITERS)}")
    rows = 0

    def write(tmp: Path) -> None:
        nonlocal rows
        if fmt == "fountain":
            # Fountain's elements are the built-in labels: the project's classes are written as those
            frame = build_export(db, script_id=script_id, only_human=only_human,
                                 scheme="full" if scheme == "project" else scheme,
                                 hidden_scripts=hidden_scripts)
            WRITERS[fmt](frame, tmp)
            rows = len(frame)
            return
        stream = _Stream(fmt, tmp)
        try:
            for frame in iter_export_frames(db, script_id=script_id, only_human=only_human, scheme=scheme,
                                            hidden_scripts=hidden_scripts):
                stream.write(frame)
        finally:
            stream.close()
        rows = stream.rows

    out = write_atomically(out, write, db=db, force=force)
    return {"format": fmt, "out": str(out), "rows": int(rows)}


def export_bytes(db: Database, fmt: str, **filters) -> bytes:
    """The export as bytes (for a download button)."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / f"export.{fmt}"
        export_dataset(db, fmt, out, **filters)
        return out.read_bytes()
