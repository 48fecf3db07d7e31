"""Dataset exports: CSV, JSONL, Parquet, Fountain, CoNLL — one pluggable writer per format."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
from sqlite_utils import Database

from store import scripts as script_store
from store.export import export_frame
from store.types import SEED_SCHEME, ScriptlabelError


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
            out[column] = out[column].map(neutralize_cell)
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
        for script_id, group in frame.groupby("script_id", sort=False):
            handle.write(f"-DOCSTART- -X- {script_id} O\n\n")
            for row in group.itertuples():
                label = row.label if isinstance(row.label, str) else "other"
                for i, token in enumerate(str(row.text).split()):
                    handle.write(f"{token}\t{'B' if i == 0 else 'I'}-{label}\n")
                handle.write("\n")


def _write_fountain(frame: pd.DataFrame, out: Path) -> None:
    from labeling.formats.fountain import write_fountain

    if frame["script_id"].nunique() > 1:
        raise ExportError("a Fountain export holds one script: add --script ID (see `scriptlabel scripts`)")
    if frame["label"].isin({"S", "C", "D", "O"}).any():
        raise ExportError("Fountain needs the full label set: drop --scheme seed for a Fountain export")
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
                 scheme: str = "full", hidden_scripts: set[int] | frozenset[int] = frozenset()) -> pd.DataFrame:
    if scheme not in ("full", "seed"):
        raise ExportError(f"--scheme must be full or seed, not {scheme!r}")
    if script_id is not None and script_id in hidden_scripts:
        raise ExportError(f"no script with id {script_id}")
    if script_id is not None:
        script_store.get_script(db, script_id)
    frame = export_frame(db, script_id=script_id, only_human=only_human)
    if hidden_scripts:
        frame = frame[~frame["script_id"].isin(list(hidden_scripts))].reset_index(drop=True)
    if scheme == "seed":
        frame["label"] = frame["label"].map(SEED_SCHEME)
    return frame


def export_dataset(db: Database, fmt: str, out: str | Path, *, script_id: int | None = None,
                   only_human: bool = False, scheme: str = "full", raw_cells: bool = False,
                   hidden_scripts: set[int] | frozenset[int] = frozenset()) -> dict:
    """Write the export and return {"format", "out", "rows"}. Checks the destination before writing.

    CSV cells that start like a formula are prefixed with "'" unless `raw_cells`; scripts in
    `hidden_scripts` (restricted to other people) are left out."""
    if fmt not in WRITERS:
        raise ExportError(f"unknown export format {fmt!r}: use one of {', '.join(WRITERS)}")
    out = Path(out)
    if out.is_dir():
        raise ExportError(f"{out} is a directory; give a file path, e.g. {out / ('export.' + fmt)}")
    if not out.parent.exists():
        raise ExportError(f"{out.parent}: no such directory; create it first (mkdir -p {out.parent})")
    frame = build_export(db, script_id=script_id, only_human=only_human, scheme=scheme,
                         hidden_scripts=hidden_scripts)
    if fmt == "csv" and not raw_cells:
        frame = neutralize_formulas(frame)
    tmp = out.with_name(out.name + ".partial")
    try:
        WRITERS[fmt](frame, tmp)
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)
    return {"format": fmt, "out": str(out), "rows": int(len(frame))}


def export_bytes(db: Database, fmt: str, **filters) -> bytes:
    """The export as bytes (for a download button)."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / f"export.{fmt}"
        export_dataset(db, fmt, out, **filters)
        return out.read_bytes()
