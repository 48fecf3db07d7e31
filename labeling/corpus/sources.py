"""Labeled screenplay corpora from the shared data folder, as line frames the line classifier reads.

Each loader returns one `LabeledScript` per script: every line of the script in reading order (the
classifier's input contract, `LINE_COLUMNS`) and a label per line, `None` where the line exists but
nobody labeled it. Unlabeled lines matter: features look at neighbours and at a script's own indent
levels, so MovieParse scripts come whole although only a window of each is gold.

Sources (see shared/data/README.md):
- `load_movieparse`: human gold, majority tag through MOVIEPARSE_TAGS, non-blank lines of each window.
- `load_studio_pdfs`: PDF text-layer lines labeled by aligning them word for word to the Fountain
  transcription (`project_fountain_labels`); unmatched lines become `other`.
- `load_fountain_samples`: clean Fountain files (labels are the element types), and the PDFs rendered
  from them, projected like the studio PDFs.

The data folder is a parameter everywhere; `default_data_dir()` honours `SCRIPTLABEL_SHARED_DATA`.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from store.types import LABELS, MOVIEPARSE_TAGS, Line, ScriptlabelError

LINE_COLUMNS = ("script_id", "line_no", "page", "text", "indent", "gap_before", "x0", "y0", "x1", "y1")

# Studio PDFs whose Fountain transcription departs from the PDF (README: 73–81% of lines match).
LOW_MATCH_SCRIPTS = frozenset({"big-fish", "chronicle-2-martyr"})


class CorpusUnavailableError(ScriptlabelError):
    """The shared data folder, or a reader a loader needs, is not there."""


@dataclass(frozen=True)
class LabeledScript:
    """One script's lines (LINE_COLUMNS, reading order) and a label per line (None = unlabeled)."""

    script_id: str
    source: str  # "movieparse" | "studio_pdf" | "fountain" | "fountain_pdf"
    lines: pd.DataFrame
    labels: np.ndarray  # object array of label strings or None, aligned with `lines`
    match_rate: float | None = None  # share of lines matched to the labeled source text
    notes: tuple[str, ...] = field(default=())
    # MovieParse: how many of the three annotators gave the majority label (0-3; -1 where unlabeled)
    agreement: np.ndarray | None = None

    @property
    def n_labeled(self) -> int:
        return int(sum(label is not None for label in self.labels))


def default_data_dir() -> Path:
    """`$SCRIPTLABEL_SHARED_DATA`, else `../shared/data` beside the repository."""
    env = os.environ.get("SCRIPTLABEL_SHARED_DATA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[3] / "shared" / "data"


def _resolve(data_dir: str | Path | None, sub: str) -> Path:
    root = Path(data_dir) if data_dir is not None else default_data_dir()
    path = root / sub
    if not path.exists():
        raise CorpusUnavailableError(
            f"{path} is missing: put the shared screenplay data at {root} "
            "or point SCRIPTLABEL_SHARED_DATA at it"
        )
    return path


def lines_frame(lines: Sequence[Line], script_id: str) -> pd.DataFrame:
    """Stored `Line`s → the classifier's input frame (LINE_COLUMNS), in reading order."""
    frame = pd.DataFrame(
        {
            "script_id": [script_id] * len(lines),
            "line_no": [line.line_no for line in lines],
            "page": [line.page for line in lines],
            "text": [line.text for line in lines],
            "indent": [float(line.indent) for line in lines],
            "gap_before": [float(line.gap_before) for line in lines],
            "x0": [float(line.x0) for line in lines],
            "y0": [float(line.y0) for line in lines],
            "x1": [float(line.x1) for line in lines],
            "y1": [float(line.y1) for line in lines],
        },
        columns=list(LINE_COLUMNS),
    )
    return frame


def concat_scripts(scripts: Iterable[LabeledScript]) -> tuple[pd.DataFrame, np.ndarray]:
    """All scripts' lines in one frame (index reset) and their labels (None = unlabeled)."""
    scripts = list(scripts)
    if not scripts:
        return pd.DataFrame(columns=list(LINE_COLUMNS)), np.array([], dtype=object)
    frame = pd.concat([s.lines for s in scripts], ignore_index=True)
    labels = np.concatenate([np.asarray(s.labels, dtype=object) for s in scripts])
    return frame, labels


# --- MovieParse gold -------------------------------------------------------------------------


def _norm_ws(text: str) -> str:
    return " ".join(str(text).split())


def load_movieparse(
    data_dir: str | Path | None = None, *, movies: Iterable[str] | None = None
) -> list[LabeledScript]:
    """MovieParse gold: whole scripts, labels on the non-blank lines of each gold window.

    The gold CSV's `script_line_idx` is 0-based in `screenplays/<movie>.txt`, so it is the parsed
    line's `source_line_no - 1`. Lines whose text differs from the gold text (after whitespace
    normalization) are counted in `notes`; they keep their gold label.
    """
    from labeling.ingest.formats.plaintext import parse_plaintext, read_text_file

    root = _resolve(data_dir, "movieparse")
    gold = pd.read_csv(root / "gold_lines.csv", keep_default_na=False, dtype={"majority": str})
    wanted = set(movies) if movies is not None else None
    scripts = []
    for movie, rows in gold.groupby("movie", sort=True):
        if wanted is not None and movie not in wanted:
            continue
        # markup=True: the corpus was aligned with its gold lines with IMSDb's tags read as markup
        lines = parse_plaintext(read_text_file(root / "screenplays" / f"{movie}.txt"), markup=True)
        position = {line.source_line_no - 1: i for i, line in enumerate(lines)}
        labels = np.full(len(lines), None, dtype=object)
        agreement = np.full(len(lines), -1, dtype=np.int8)
        mismatched, missing = 0, 0
        for row in rows.itertuples(index=False):
            if not str(row.text).strip():
                continue  # blank lines are not stored lines; gold calls them O
            i = position.get(int(row.script_line_idx))
            if i is None:
                missing += 1
                continue
            if _norm_ws(lines[i].text) != _norm_ws(row.text):
                mismatched += 1
            labels[i] = MOVIEPARSE_TAGS[str(row.majority).strip()]
            agreement[i] = sum(str(a).strip() == str(row.majority).strip() for a in (row.ann1, row.ann2, row.ann3))
        notes = []
        if mismatched:
            notes.append(f"{mismatched} gold lines differ from the parsed text (whitespace/tabs)")
        if missing:
            notes.append(f"{missing} gold lines have no parsed line")
        scripts.append(
            LabeledScript(
                script_id=f"movieparse/{movie}",
                source="movieparse",
                lines=lines_frame(lines, f"movieparse/{movie}"),
                labels=labels,
                notes=tuple(notes),
                agreement=agreement,
            )
        )
    return scripts


# --- Projecting Fountain labels onto PDF lines -----------------------------------------------

_WORD = re.compile(r"[A-Za-z0-9']+")
_QUOTES = str.maketrans({"’": "'", "‘": "'", "“": '"', "”": '"', "–": "-", "—": "-"})


def _words(text: str) -> list[str]:
    return [w.lower().strip("'") for w in _WORD.findall(text.translate(_QUOTES)) if w.strip("'")]


@dataclass(frozen=True)
class Projection:
    labels: np.ndarray  # one label per target line (`other` where unmatched)
    matched: np.ndarray  # bool: the line's words matched the source word for word
    match_rate: float
    # (rule, projected label, new label) → lines the PDF's layout relabeled (`layout_consistent_labels`)
    relabeled: dict[tuple[str, str, str], int] = field(default_factory=dict)


def project_fountain_labels(
    target_lines: Sequence[str], source_lines: Sequence[tuple[str, str | None]], *, min_share: float = 0.5,
    layout: pd.DataFrame | None = None,
) -> Projection:
    """Give each target line (PDF text) the label of the source words (Fountain) it aligns to.

    Both sides become word sequences (lower-cased, punctuation dropped, curly quotes folded) and are
    aligned with an indel alignment; a target line takes the majority label of its aligned words when
    at least `min_share` of its words aligned, else `other` (page numbers, CONTINUED, (MORE)...).
    `matched` is true where every word of the line aligned. With `layout` (the target lines' `indent`,
    `x1`, `gap_before` and `page`), labels the PDF's own layout contradicts are corrected
    (`layout_consistent_labels`).
    """
    from rapidfuzz.distance import Indel

    src_words: list[str] = []
    src_label: list[str] = []
    for text, label in source_lines:
        for word in _words(text):
            src_words.append(word)
            src_label.append(label or "other")
    tgt_words: list[str] = []
    tgt_line: list[int] = []
    for i, text in enumerate(target_lines):
        for word in _words(text):
            tgt_words.append(word)
            tgt_line.append(i)
    vocab: dict[str, int] = {}
    src_ids = [vocab.setdefault(w, len(vocab)) for w in src_words]
    tgt_ids = [vocab.setdefault(w, len(vocab)) for w in tgt_words]
    aligned_label: list[str | None] = [None] * len(tgt_words)
    for op in Indel.opcodes(tgt_ids, src_ids):
        if op.tag == "equal":
            for k in range(op.src_end - op.src_start):
                aligned_label[op.src_start + k] = src_label[op.dest_start + k]
    n = len(target_lines)
    counts: list[Counter] = [Counter() for _ in range(n)]
    totals = np.zeros(n, dtype=int)
    for word_pos, line in enumerate(tgt_line):
        totals[line] += 1
        if aligned_label[word_pos] is not None:
            counts[line][aligned_label[word_pos]] += 1
    labels = np.full(n, "other", dtype=object)
    matched = np.zeros(n, dtype=bool)
    aligned = np.zeros(n, dtype=bool)
    for i in range(n):
        hit = sum(counts[i].values())
        if totals[i] and hit >= min_share * totals[i]:
            labels[i] = counts[i].most_common(1)[0][0]
            aligned[i] = True
        matched[i] = totals[i] > 0 and hit == totals[i]
    with_words = totals > 0
    rate = float(matched[with_words].mean()) if with_words.any() else 0.0
    relabeled: dict[tuple[str, str, str], int] = {}
    if layout is not None:
        labels, relabeled = layout_consistent_labels(list(target_lines), labels, aligned, layout)
    return Projection(labels=labels, matched=matched, match_rate=rate, relabeled=relabeled)


_UPPER = re.compile(r"[A-Z]")
_LOWER = re.compile(r"[a-z]")


def _level(values: np.ndarray, labels: np.ndarray, label: str, *, min_lines: int = 5) -> float | None:
    """The column where most lines of `label` sit (None when fewer than `min_lines` have it)."""
    columns = np.round(values[labels == label]).astype(int)
    if len(columns) < min_lines:
        return None
    found, count = np.unique(columns, return_counts=True)
    return float(found[count.argmax()])


def _is_caps(text: str) -> bool:
    return bool(_UPPER.search(text)) and not _LOWER.search(text)


def layout_consistent_labels(texts: list[str], labels: np.ndarray, aligned: np.ndarray,
                             layout: pd.DataFrame) -> tuple[np.ndarray, dict[tuple[str, str, str], int]]:
    """Correct projected labels that the PDF's layout contradicts; returns the labels and what changed.

    A transcription is made by someone reading the PDF, and it slips where screenplay formatting is
    implicit: a speech continued after a page break loses its `NAME (CONT'D)` cue, so it is written as
    action (or, if shouted, each upper-case line becomes a cue of its own); a parenthetical wrapped
    over two lines is run into the dialogue; a right-aligned phrase split over lines ("WE MOVE INTO A
    / MONTAGE") reads as a cue and its speech. The PDF keeps every element at its own indent, so each
    class's column is found from the projection itself (the column most of its lines sit at) and:

    - `speech`: a line projected action, or an upper-case line projected as a cue with no blank line
      before it (cues start a paragraph), that sits at the dialogue column (and not its own class's)
      is dialogue;
    - `parenthetical`: lines from one opening with "(" at the parenthetical column to the one closing
      it (at most 4, same page) that were projected dialogue or action are parenthetical;
    - `cue`: an upper-case line nothing aligned to (left `other`) at the cue column, directly above
      a line that is now dialogue or parenthetical on the same page, is the character cue;
    - `right`: an upper-case line projected action, cue or dialogue, at least 15 columns right of the
      cue column and ending at the column where transitions end (right-aligned), is a transition.

    Nothing fires in a script whose classes share a column (no layout to go by), and dual dialogue
    (its columns sit elsewhere) is left alone.
    """
    labels = np.asarray(labels, dtype=object).copy()
    projected = labels.copy()
    n = len(labels)
    indent = layout["indent"].to_numpy(dtype=float)
    from labeling.ingest.pdf.layout import POINTS_PER_COLUMN

    right = layout["x1"].to_numpy(dtype=float) / POINTS_PER_COLUMN
    gap = layout["gap_before"].to_numpy(dtype=float)
    page = layout["page"].to_numpy()
    level = {c: _level(indent, labels, c) for c in ("action", "character", "dialogue", "parenthetical")}
    transition_end = _level(right, labels, "transition", min_lines=3)
    rule = np.full(n, "", dtype=object)

    def at(i: int, label: str) -> bool:
        return level[label] is not None and abs(indent[i] - level[label]) <= 1.0

    for i in range(n):
        if labels[i] == "action" and at(i, "dialogue") and not at(i, "action"):
            labels[i], rule[i] = "dialogue", "speech"
        elif (labels[i] == "character" and at(i, "dialogue") and not at(i, "character") and gap[i] < 0.5
              and _is_caps(texts[i])):
            labels[i], rule[i] = "dialogue", "speech"
    paren, speech = level["parenthetical"], level["dialogue"]
    if paren is not None and speech is not None and abs(paren - speech) >= 2:
        i = 0
        while i < n:
            if not (texts[i].lstrip().startswith("(") and at(i, "parenthetical")):
                i += 1
                continue
            j = i
            while j + 1 < n and j - i < 3 and ")" not in texts[j] and page[j + 1] == page[i] \
                    and indent[j + 1] >= paren - 0.5:
                j += 1
            if texts[j].rstrip().endswith(")"):
                for k in range(i, j + 1):
                    if labels[k] in ("dialogue", "action"):
                        labels[k], rule[k] = "parenthetical", "parenthetical"
            i = j + 1
    for i in range(n - 1):
        text = texts[i].strip()
        if (labels[i] == "other" and not aligned[i] and at(i, "character") and _is_caps(text)
                and not text.startswith("(") and page[i + 1] == page[i]
                and labels[i + 1] in ("dialogue", "parenthetical") and not at(i, "dialogue")):
            labels[i], rule[i] = "character", "cue"
    if transition_end is not None and level["character"] is not None:
        for i in range(n):
            if (labels[i] in ("action", "character", "dialogue") and indent[i] >= level["character"] + 15
                    and abs(right[i] - transition_end) <= 1.0 and _is_caps(texts[i])):
                labels[i], rule[i] = "transition", "right"
    changed = Counter((str(rule[i]), str(projected[i]), str(labels[i])) for i in np.flatnonzero(labels != projected))
    return labels, dict(changed)


def running_headers(frame: pd.DataFrame, *, min_page_share: float = 0.5, max_height_std: float = 3.0) -> np.ndarray:
    """Lines of page furniture: text (numbers masked) in the first or last two lines of a page that comes
    back there on at least `min_page_share` of the pages, always at about the same height.

    A transcription may carry a running header as action (one studio script's show-and-episode header
    matched the title words of its Fountain file); DESIGN.md calls running headers `other`, whatever the
    projection says.
    """
    n = len(frame)
    pages = frame["page"].to_numpy()
    if n == 0 or len(np.unique(pages)) < 3:
        return np.zeros(n, dtype=bool)
    rank = frame.groupby("page").cumcount().to_numpy()
    rank_rev = frame.iloc[::-1].groupby("page").cumcount().to_numpy()[::-1]
    templates = frame["text"].astype(str).str.split().str.join(" ").str.replace(r"\d+", "#", regex=True)
    edge = pd.DataFrame({"t": templates.to_numpy(), "p": pages, "y": frame["y0"].to_numpy(dtype=float)})
    edge = edge[(rank <= 1) | (rank_rev <= 1)]
    stats = edge.groupby("t").agg(pages=("p", "nunique"), spread=("y", "std"))
    furniture = stats[(stats["pages"] >= max(3, min_page_share * len(np.unique(pages))))
                      & (stats["spread"].fillna(0.0) <= max_height_std)].index
    return ((rank <= 1) | (rank_rev <= 1)) & templates.isin(set(furniture)).to_numpy()


def repeated_cues(target_lines: Sequence[str], labels: np.ndarray) -> np.ndarray:
    """A printed script repeats the speaker's cue where a speech breaks across a page ("RICK (CONT'D)"
    after "(MORE)"); its Fountain source has no such line, so the projection calls it `other`. Gold
    (MovieParse) calls it a cue: a line labeled `other` whose speaker is a character of this script and
    that is followed by dialogue or a parenthetical becomes `character`."""
    from store.rules import character_name

    labels = np.asarray(labels, dtype=object).copy()
    names = {character_name(t) for t, label in zip(target_lines, labels) if label == "character"}
    names.discard("")
    for i in range(len(labels) - 1):
        if (labels[i] == "other" and labels[i + 1] in ("dialogue", "parenthetical")
                and character_name(target_lines[i]) in names):
            labels[i] = "character"
    return labels


def _fountain_parser():
    try:
        from labeling.ingest.formats.fountain import parse_fountain
    except ImportError as exc:
        raise CorpusUnavailableError(
            "labeling.ingest.formats.fountain is not available yet; Fountain-labeled corpora need it"
        ) from exc
    return parse_fountain


def _text_layer_reader():
    try:
        from labeling.ingest.pdf.textlayer import read_text_layer
    except ImportError as exc:
        raise CorpusUnavailableError(
            "labeling.ingest.pdf.textlayer is not available yet; PDF corpora need it"
        ) from exc
    return read_text_layer


def _fountain_source(path: Path) -> list[tuple[str, str | None]]:
    from labeling.ingest.formats.plaintext import read_text_file

    parse_fountain = _fountain_parser()
    return [(line.text, line.imported_label) for line in parse_fountain(read_text_file(path))]


def silver_labels(frame: pd.DataFrame, fountain: Path) -> tuple[np.ndarray, Projection]:
    """Labels for a PDF's lines (a `lines_frame`, text layer or OCR) from the script's Fountain file: the
    projection corrected by the page's layout, cues repeated after a page break, running headers `other`."""
    texts = frame["text"].astype(str).tolist()
    projection = project_fountain_labels(texts, _fountain_source(fountain), layout=frame)
    labels = repeated_cues(texts, projection.labels)
    return np.where(running_headers(frame), "other", labels).astype(object), projection


def _projected_pdf(pdf: Path, fountain: Path, script_id: str, source: str) -> LabeledScript:
    read_text_layer = _text_layer_reader()
    lines = read_text_layer(pdf)
    frame = lines_frame(lines, script_id)
    labels, projection = silver_labels(frame, fountain)
    notes = [f"match rate {projection.match_rate:.3f}"]
    if pdf.stem in LOW_MATCH_SCRIPTS:
        notes.append("known low-match transcription: check before trusting")
    return LabeledScript(
        script_id=script_id,
        source=source,
        lines=frame,
        labels=labels,
        match_rate=projection.match_rate,
        notes=tuple(notes),
    )


def load_studio_pdfs(
    data_dir: str | Path | None = None, *, slugs: Iterable[str] | None = None
) -> list[LabeledScript]:
    """Studio PDFs (text layer) with labels projected from their Fountain transcriptions."""
    root = _resolve(data_dir, "studio_pdfs")
    wanted = set(slugs) if slugs is not None else None
    scripts = []
    for pdf in sorted((root / "pdf").glob("*.pdf")):
        fountain = root / "fountain" / f"{pdf.stem}.fountain"
        if (wanted is not None and pdf.stem not in wanted) or not fountain.exists():
            continue
        scripts.append(_projected_pdf(pdf, fountain, f"studio_pdf/{pdf.stem}", "studio_pdf"))
    return scripts


def load_fountain_samples(
    data_dir: str | Path | None = None, *, with_pdfs: bool = True
) -> list[LabeledScript]:
    """Fountain samples as parsed lines (imported labels), plus their rendered PDFs projected.

    FDX files duplicate the Fountain ones (same screenplays), so they add no new labels here.
    """
    root = _resolve(data_dir, "fountain_samples")
    parse_fountain = _fountain_parser()
    from labeling.ingest.formats.plaintext import read_text_file

    scripts = []
    for path in sorted(root.rglob("*.fountain")):
        script_id = f"fountain/{path.parent.name}/{path.stem}"
        lines = [l for l in parse_fountain(read_text_file(path)) if l.text.strip()]
        labels = np.array([l.imported_label or "other" for l in lines], dtype=object)
        scripts.append(LabeledScript(script_id, "fountain", lines_frame(lines, script_id), labels, 1.0))
        pdf = path.with_suffix(".pdf")
        if with_pdfs and pdf.exists():
            scripts.append(
                _projected_pdf(pdf, path, f"fountain_pdf/{path.parent.name}/{path.stem}", "fountain_pdf")
            )
    return scripts


LAYOUT_VARIANTS = ("flush", "nogap", "flush_nogap", "widedlg", "flush_widedlg", "excerpt")
# The variants the line model trains on beside the originals (see bench/line_accuracy.py's log;
# `excerpt` since issue 26: README, line model section).
TRAINING_VARIANTS = ("flush", "nogap", "flush_widedlg", "excerpt")


def layout_variant(frame: pd.DataFrame, labels: np.ndarray, kind: str) -> tuple[pd.DataFrame, np.ndarray]:
    """A copy of one script's lines laid out differently, for training robustness.

    `flush`: every line at the script's left margin (no indentation to go by, as in some scrapes);
    `nogap`: no blank lines within a page; `widedlg`: dialogue paragraphs re-wrapped as wide as the
    action (some scripts do not narrow dialogue); combinations join with `_`. The copy gets
    script_id `<id>#<kind>` and a `group` column naming the original, so grouped folds keep them
    together. Returns the frame and its labels (re-wrapping changes the line count).
    """
    parts = kind.split("_")
    if kind not in LAYOUT_VARIANTS:
        raise ValueError(f"unknown layout variant {kind!r}: use one of {', '.join(LAYOUT_VARIANTS)}")
    out = frame.reset_index(drop=True).copy()
    labels = np.asarray(labels, dtype=object)
    original = out["script_id"].astype(str)
    out["group"] = out["group"] if "group" in out.columns else original
    out["script_id"] = original + "#" + kind
    if "excerpt" in parts:
        out, labels = excerpt_variant(out, labels, seed=sum(map(ord, original.iloc[0])) if len(out) else 0)
    if "widedlg" in parts:
        out, labels = _rewrap_dialogue(out, labels)
    if "flush" in parts:
        width = out["x1"] - out["x0"]
        out["x0"] = float(out["x0"].min()) if len(out) else 0.0
        out["x1"] = out["x0"] + width
        out["indent"] = float(out["indent"].min()) if len(out) else 0.0
    if "nogap" in parts:
        first_on_page = out["page"].ne(out["page"].shift())
        out["gap_before"] = np.where(first_on_page, out["gap_before"], 0.0)
    return out, labels


def _rewrap_dialogue(frame: pd.DataFrame, labels: np.ndarray) -> tuple[pd.DataFrame, np.ndarray]:
    import textwrap

    is_action = np.array([label == "action" for label in labels])
    lengths = frame["text"].astype(str).str.len().to_numpy()
    if is_action.sum() < 5:
        return frame, labels
    width = int(np.percentile(lengths[is_action], 90))
    scale = float(np.median((frame["x1"] - frame["x0"]).to_numpy()[is_action] / np.maximum(lengths[is_action], 1)))
    rows, new_labels = [], []
    i, n = 0, len(frame)
    records = frame.to_dict("records")
    while i < n:
        j = i + 1
        if labels[i] == "dialogue":
            while (j < n and labels[j] == "dialogue" and records[j]["gap_before"] <= 0.5
                   and records[j]["page"] == records[i]["page"]):
                j += 1
        if j - i == 1:
            rows.append(records[i])
            new_labels.append(labels[i])
        else:
            paragraph = " ".join(str(r["text"]).strip() for r in records[i:j])
            for k, text in enumerate(textwrap.wrap(paragraph, width=width) or [paragraph]):
                row = dict(records[i])
                row.update(text=text, gap_before=records[i]["gap_before"] if k == 0 else 0.0,
                           x1=row["x0"] + len(text) * scale)
                rows.append(row)
                new_labels.append("dialogue")
        i = j
    out = pd.DataFrame(rows, columns=frame.columns)
    out["line_no"] = np.arange(1, len(out) + 1)
    return out, np.asarray(new_labels, dtype=object)


def excerpt_variant(frame: pd.DataFrame, labels: np.ndarray, *, seed: int = 0, tail: int = 100
                    ) -> tuple[pd.DataFrame, np.ndarray]:
    """What a zero-shot model meets that full scripts rarely show (issue 26): the file starts mid-scene
    (cut at a random line up to halfway into the labeled lines, and ends `tail` lines after them: an
    excerpt, actors' sides), half of the transitions are written in lower case ("Cut to."), half of the
    parentheticals of three words or more wrap over two lines, and a fifth of the one-line parentheticals
    run into the speech under them on one line (a `dialogue` line, as the guidelines label it)."""
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels, dtype=object)
    labeled = np.flatnonzero([label is not None for label in labels])
    if len(labeled) == 0:
        return frame, labels
    first, last = int(labeled[0]), int(labeled[-1])
    cut = int(rng.integers(max(0, first - 10), first + (last - first) // 2 + 1))
    records = frame.iloc[cut: last + 1 + tail].to_dict("records")
    labels = labels[cut: last + 1 + tail]
    widths = [(r["x1"] - r["x0"]) / max(len(str(r["text"])), 1) for r in records if len(str(r["text"])) > 5]
    scale = float(np.median(widths)) if widths else 1.0
    rows, out_labels = [], []
    i = 0
    while i < len(records):
        row, label, text = dict(records[i]), labels[i], str(records[i]["text"]).strip()
        if label == "transition" and rng.random() < 0.5:
            text = text[:1] + text[1:].lower()
            row["text"] = text[:-1] + "." if text.endswith(":") and rng.random() < 0.5 else text
        elif label == "parenthetical" and text.startswith("(") and text.endswith(")"):
            words = text.split()
            nxt = i + 1 < len(records) and labels[i + 1] == "dialogue" and records[i + 1]["gap_before"] <= 0.5
            if len(words) >= 3 and rng.random() < 0.5:
                half = len(words) // 2
                first_part, second = " ".join(words[:half]), " ".join(words[half:])
                rows.append({**row, "text": first_part, "x1": row["x0"] + len(first_part) * scale})
                out_labels.append(label)
                row = {**row, "text": second, "gap_before": 0.0, "indent": row["indent"] + 1,
                       "x0": row["x0"] + scale, "x1": row["x0"] + scale + len(second) * scale}
            elif nxt and len(words) <= 3 and rng.random() < 0.2:
                joined = text + " " + str(records[i + 1]["text"]).strip()
                row.update(text=joined, x1=row["x0"] + len(joined) * scale)
                label = "dialogue"
                i += 1
        rows.append(row)
        out_labels.append(label)
        i += 1
    out = pd.DataFrame(rows, columns=frame.columns)
    out["line_no"] = np.arange(1, len(out) + 1)
    return out, np.asarray(out_labels, dtype=object)


def with_layout_variants(
    scripts: Sequence[LabeledScript], kinds: Sequence[str] = ("flush", "nogap")
) -> tuple[pd.DataFrame, np.ndarray]:
    """All scripts plus their layout variants, as one frame (with `group`) and labels."""
    frames, labels = [], []
    for script in scripts:
        base = script.lines.copy()
        base["group"] = base["script_id"].astype(str)
        frames.append(base)
        labels.append(np.asarray(script.labels, dtype=object))
        for kind in kinds:
            frame, lab = layout_variant(base, script.labels, kind)
            frames.append(frame)
            labels.append(lab)
    return pd.concat(frames, ignore_index=True), np.concatenate(labels)


def label_counts(labels: np.ndarray) -> dict[str, int]:
    counts = Counter(label for label in labels if label is not None)
    return {name: counts.get(name, 0) for name in LABELS}
