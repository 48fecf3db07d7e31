"""What the Streamlit pages call: first start, scripts, crops, the whole-script table, sequences, export.

Nothing here imports Streamlit, so every function is tested on its own (tests/test_app_support.py);
the pages map widgets to these calls and cache the heavy reads by `change_token`. The labeling
view is app_pages/label_view (server side: labeling/session/sync.py), the Models page's tables and plots in
app_pages/model_views.py.
"""

from __future__ import annotations

import io
import re
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from sqlite_utils import Database

from labeling.export import WRITERS
from labeling.ingest.pipeline import FLAG_WORDS, IngestLimits, IngestResult, ingest_path
from labeling.session.strategies import STRATEGIES
from labeling.settings import Settings
from store import labels as label_store
from store import models as model_store
from store import scripts as script_store
from store import sequences as sequence_store
from store.types import BREAKDOWN_TAGS, LABELS

LABEL_COLORS = {
    "scene_heading": "#f4a261", "action": "#8ecae6", "character": "#b5838d", "dialogue": "#90be6d",
    "parenthetical": "#cdb4db", "transition": "#ffd166", "other": "#c0c0c0",
}
STRATEGY_NAMES = tuple(STRATEGIES)
EXPORT_MIME = {"csv": "text/csv", "jsonl": "application/jsonl", "parquet": "application/vnd.apache.parquet",
               "fountain": "text/plain", "conll": "text/plain",
               "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


_CLI_WORDS = re.compile(r"`scriptlabel\b|\bscriptlabel \w+|(?<![\w-])--[a-z]")
_TEMP_PATH = re.compile(r"(?:/tmp|/var/tmp|/private/var/folders)/\S*?/([^/\s:;,]+)")


def app_message(message: str) -> str:
    """A message written for the command line, rewritten for the app.

    Advice that names commands or flags (after a ";" or in brackets) is dropped, and a temporary
    upload path becomes the file's own name.
    """
    message = _TEMP_PATH.sub(r"\1", message)
    parts = [p.strip() for p in message.split(";")]
    kept = [p for p in parts if not _CLI_WORDS.search(p)]
    if kept:
        text = "; ".join(kept)
    else:  # the advice is inside the only sentence: keep what comes before it
        head = parts[0][:_CLI_WORDS.search(parts[0]).start()]
        text = head.split(":")[0] if ":" in head else head
    text = re.sub(r"\s*\([^)]*(?:`scriptlabel|--[a-z])[^)]*\)", "", text)
    return text[:1].upper() + text[1:] if text else "Something went wrong; try again."


# Characters that start Markdown, HTML, LaTeX or Streamlit syntax anywhere in a line; ":" only before a
# word (":red[", ":material/x:", ":smile:", "http://"), list markers only at the start.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>#|~$!]|:(?=[A-Za-z/_-])|^[-+](?=\s)|^\d+(?=[.)]))")


def markdown_text(text) -> str:
    """User text (a line, a title, a tag, a file name) made literal inside Streamlit Markdown: Markdown,
    HTML, LaTeX ($) and directive (:red[...], :material/x:) characters are backslash-escaped and line
    breaks become spaces, so `![x](http://…)` shows as typed and fetches nothing."""
    text = "" if text is None else str(text)
    text = text.replace("\r", " ").replace("\n", " ")
    return _MARKDOWN_SPECIAL.sub(lambda m: "\\" + m.group(0) if not m.group(0)[0].isdigit()
                                 else m.group(0) + "\\", text)


PAGE_IMAGE_ROUTE = "/api/label/page"  # labeling/session/api.py: signed-in, refuses restricted scripts


def page_thumbnails_html(script_id: int, pages: list[int], *, width: int = 150) -> str:
    """Page images as <img> tags on the app's own page route, which checks the session and restricted
    scripts on every request (Streamlit's /media/ URLs, once handed out, know nothing of either)."""
    figures = "".join(
        f'<figure style="margin:0 0 .5rem"><img src="{PAGE_IMAGE_ROUTE}/{int(script_id)}/{int(page)}" '
        f'width="{int(width)}" loading="lazy" alt="page {int(page)}"><figcaption style="font-size:.8rem;'
        f'color:#666">page {int(page)}</figcaption></figure>' for page in pages)
    return f'<div class="page-thumbnails">{figures}</div>'


def ensure_sample(db: Database, settings: Settings) -> IngestResult | None:
    """Ingest the bundled sample screenplay when the database has no scripts yet (and the sample exists)."""
    if not settings.load_sample or not settings.sample_path.exists() or script_store.list_scripts(db):
        return None
    return ingest_path(db, settings.sample_path, title="Tim Time")


def change_token(db: Database) -> tuple:
    """A fingerprint that changes whenever labels, text, flags, models, scripts, ratings or sequences change.

    Append-only tables only grow, so their largest id is a change counter; scripts and sequences are
    edited in place (rename, merge, split, status), so their content is fingerprinted.
    """
    return (script_store.change_stamp(db), label_store.max_event_id(db), sequence_store.change_stamp(db),
            *model_store.model_token(db))


# --- scripts ---------------------------------------------------------------------------------

def scripts_overview(db: Database, *, hidden_scripts: set[int] | frozenset[int] = frozenset()) -> pd.DataFrame:
    """One row per finished script: id, title, format, pages, lines, labeled, progress, pages with low OCR
    confidence and a count per label (scripts in `hidden_scripts`, restricted to other people, left out)."""
    rows = []
    low = script_store.low_confidence_pages(db)
    flagged: dict[int, list] = {}
    for f in script_store.flagged_pages(db):
        flagged.setdefault(f.script_id, []).append(f)
    known = label_store.current_labels(db)  # one read for the whole library, counted per script below
    per_script = known.groupby(["script_id", "label"]).size() if not known.empty else pd.Series(dtype=int)
    for s in script_store.list_scripts(db):
        if s.script_id in hidden_scripts:
            continue
        counts = per_script.loc[s.script_id] if s.script_id in per_script.index.get_level_values(0) else {}
        rows.append({"script_id": s.script_id, "title": s.title, "format": s.format, "pages": s.pages,
                     "lines": s.lines, "labeled": s.labeled, "progress": s.labeled / s.lines if s.lines else 0.0,
                     "status": s.status, "low_ocr_pages": ", ".join(str(p) for p, _ in low.get(s.script_id, [])),
                     "flagged_pages": ", ".join(f"{f.page} ({FLAG_WORDS.get(f.flag, f.flag)})"
                                                for f in flagged.get(s.script_id, [])),
                     **{label: int(counts.get(label, 0)) for label in LABELS}})
    return pd.DataFrame(rows, columns=["script_id", "title", "format", "pages", "lines", "labeled", "progress",
                                       "status", "low_ocr_pages", "flagged_pages", *LABELS])


def ingest_upload(db: Database, file_name: str, data: bytes, *,
                  progress: Callable[[int, int], None] | None = None,
                  limits: IngestLimits | None = None) -> IngestResult:
    """Ingest uploaded bytes; the file keeps its name (format and title come from it). Over `limits`
    (default: IngestLimits()) the upload is refused before anything is stored."""
    safe_name = Path(file_name).name or "upload.txt"
    limits = limits or IngestLimits()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / safe_name
        limits.check_size(path, len(data))
        path.write_bytes(data)
        return ingest_path(db, path, progress=progress, limits=limits)


# --- the whole script ------------------------------------------------------------------------

def filter_lines(frame: pd.DataFrame, *, labels: list[str] | None = None, max_confidence: float | None = None,
                 disagreements: bool = False, unlabeled: bool = False, flagged: bool = False, edited: bool = False,
                 search: str = "") -> pd.DataFrame:
    """The Script page's filters: shown label, low model confidence, model vs human, flagged, edited, text."""
    mask = pd.Series(True, index=frame.index)
    if labels:
        mask &= frame["shown"].isin(labels)
    if max_confidence is not None:
        mask &= frame["confidence"].notna() & (frame["confidence"] <= max_confidence)
    if disagreements:
        mask &= frame["disagree"]
    if unlabeled:
        mask &= frame["label"].isna()
    if flagged:
        mask &= frame["flag"].notna()
    if edited:
        mask &= frame["edited"]
    if search.strip():
        mask &= frame["text"].str.contains(search.strip(), case=False, regex=False)
    return frame[mask]


def page_progress(frame: pd.DataFrame) -> pd.DataFrame:
    """Per page: lines, labeled by a person (or imported), and the share done."""
    grouped = frame.groupby("page").agg(lines=("line_id", "size"), labeled=("label", "count")).reset_index()
    grouped["done"] = grouped["labeled"] / grouped["lines"]
    return grouped


def figure_png(figure) -> bytes:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()


def label_strip_png(frame: pd.DataFrame) -> bytes:
    """The script at a glance: line position × label, human labels solid, suggestions faint."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(10, 2.6))
    for index, label in enumerate(LABELS):
        for human, alpha in ((False, 0.25), (True, 1.0)):
            sel = frame[(frame["shown"] == label) & (frame["label"].notna() == human)]
            if len(sel):
                axis.scatter(sel["line_no"], np.full(len(sel), index), marker="|", s=120, alpha=alpha,
                             color=LABEL_COLORS[label], linewidths=1.2)
    axis.set_yticks(range(len(LABELS)), LABELS, fontsize=8)
    axis.set_xlabel("line", fontsize=8)
    axis.set_ylim(-0.7, len(LABELS) - 0.3)
    axis.tick_params(axis="x", labelsize=8)
    axis.grid(axis="x", alpha=0.2)
    return figure_png(figure)


def style_lines(frame: pd.DataFrame):
    """A pandas Styler colouring each row's label cell by its label."""
    def colour(value):
        return f"background-color: {LABEL_COLORS[value]}" if value in LABEL_COLORS else ""

    return frame.style.map(colour, subset=[c for c in ("shown", "label", "suggestion") if c in frame.columns])


# --- sequences -------------------------------------------------------------------------------

def rating_order(table: pd.DataFrame) -> list[int]:
    """Sequence ids to rate: unrated first, most uncertain prediction first, then in script order."""
    if table.empty:
        return []
    unrated = table[table["rating"].isna()].copy()
    unrated["_u"] = unrated["uncertainty"].fillna(np.inf)
    unrated = unrated.sort_values(["_u", "first_line_no"], ascending=[False, True])
    rated = table[table["rating"].notna()].sort_values("first_line_no")
    return [int(i) for i in list(unrated["sequence_id"]) + list(rated["sequence_id"])]


def next_unrated(table: pd.DataFrame, *, after: int) -> int | None:
    """The sequence to rate after rating `after`: the next unrated one further on in the script, so a person
    reading forward is never sent back (uncertainty picks where to start, not where to jump); only once
    none is left after it, the first unrated one from the start. None when every sequence is rated."""
    ordered = table.sort_values("first_line_no")
    unrated = ordered[ordered["rating"].isna() & (ordered["sequence_id"] != after)]
    if unrated.empty:
        return None
    here = table.loc[table["sequence_id"] == after, "first_line_no"]
    later = unrated[unrated["first_line_no"] > int(here.iloc[0])] if len(here) else unrated
    return int((later if len(later) else unrated)["sequence_id"].iloc[0])


# --- export ----------------------------------------------------------------------------------

FORMAT_NOTES = {
    "csv": "every text exactly as stored; to open it in a spreadsheet, choose xlsx",
    "xlsx": "for spreadsheets: every text a text cell, nothing runs as a formula",
}


def export_problem(fmt: str, *, script_id: int | None, scheme: str) -> str | None:
    """Why this export cannot be made, said before the button is pressed (or None)."""
    if fmt not in WRITERS:
        return f"unknown format {fmt!r}"
    if fmt == "fountain" and script_id is None:
        return "A Fountain export holds one script: pick a script."
    if fmt == "fountain" and scheme == "seed":
        return "Fountain needs the full label set: choose the full scheme."
    return None


PREVIEW_FULL_LINES = 200_000  # up to this many lines the preview counts every row's label source exactly


def export_summary(db: Database, *, script_id: int | None = None, only_human: bool = False, scheme: str = "full",
                   hidden_scripts: set[int] | frozenset[int] = frozenset()) -> tuple[int, dict, pd.DataFrame]:
    """(rows, rows per label source, the first 50 rows) of an export, in bounded memory and time.

    A large library is summed from stored counts (lines per script, people's labels) instead of being
    read whole: the sources then say "model or rule" for lines nobody labeled.
    """
    from labeling.export import iter_export_frames

    frames = iter_export_frames(db, script_id=script_id, only_human=only_human, scheme=scheme,
                                hidden_scripts=hidden_scripts)
    visible = [s for s in script_store.list_scripts(db) if s.script_id not in hidden_scripts
               and (script_id is None or s.script_id == script_id)]
    if sum(s.lines for s in visible) <= PREVIEW_FULL_LINES:
        total, sources, head = 0, {}, None
        for frame in frames:
            total += len(frame)
            for source, n in frame["label_source"].fillna("unlabeled").value_counts().items():
                sources[source] = sources.get(source, 0) + int(n)
            head = frame.head(50) if head is None or len(head) < 50 else head
        return total, sources, head if head is not None else pd.DataFrame()
    known = label_store.current_labels(db, script_id)
    known = known[~known["script_id"].isin(list(hidden_scripts))]
    sources = {k: int(v) for k, v in known["source"].value_counts().items()}
    total = len(known) if only_human else sum(s.lines for s in visible)
    if only_human:
        sources = {k: v for k, v in sources.items() if k in ("human", "adjudicated")}
        total = sum(sources.values())
    else:
        sources["model or rule"] = total - sum(sources.values())
    return total, sources, next(frames, pd.DataFrame()).head(50)


def export_payload(db_path: str | Path, fmt: str, *, script_id: int | None = None, only_human: bool = False,
                   scheme: str = "full", actor: str | None = None,
                   hidden_scripts: set[int] | frozenset[int] = frozenset()) -> bytes:
    """The export file's bytes, read on its own connection (the download runs outside the page script);
    recorded in the audit log under `actor` when given."""
    from labeling.export import export_bytes
    from store.accounts import audit
    from store.db import open_db

    db = open_db(db_path)
    try:
        data = export_bytes(db, fmt, script_id=script_id, only_human=only_human, scheme=scheme,
                            hidden_scripts=hidden_scripts)
        if actor is not None:
            audit(db, actor, "export", script_id=script_id,
                  detail={"format": fmt, "scheme": scheme, "only_human": only_human, "bytes": len(data), "via": "app"})
        return data
    finally:
        db.close()


def export_file_name(fmt: str, *, script_title: str | None = None, scheme: str = "full") -> str:
    stem = re.sub(r"[^A-Za-z0-9]+", "-", script_title or "all-scripts").strip("-").lower() or "export"
    suffix = "" if scheme in ("full", "project") else f"-{scheme}"
    return f"scriptlabel-{stem}{suffix}.{fmt}"


# --- breakdown tags --------------------------------------------------------------------------------



def sequence_tags(db, sequence_id: int) -> list[str]:
    """Tags currently present on a sequence (latest event per tag wins)."""
    from store.sequences import current_tags

    frame = current_tags(db)
    frame = frame[(frame["sequence_id"] == sequence_id) & (frame["present"] == 1)]
    return sorted(frame["tag"])


def tag_options(db) -> list[str]:
    from store.sequences import current_tags

    return sorted(set(BREAKDOWN_TAGS) | set(current_tags(db)["tag"]))


def save_sequence_tags(db, sequence_id: int, chosen: list[str], *, annotator: str) -> None:
    """Record the chosen tags as present and every other known tag as absent (one event each)."""
    from store.sequences import set_tag

    chosen_set = {t.strip().lower() for t in chosen if t.strip()}
    for tag in sorted(set(tag_options(db)) | chosen_set):
        set_tag(db, sequence_id, tag, present=tag in chosen_set, annotator=annotator)
