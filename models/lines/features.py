"""Line features: the dense block computed per script (the text's n-grams are the content model's,
`models.lines.content`, and the sequence labeler's, `models.lines.sequence`).

Input is the classifier's line frame (`LINE_COLUMNS`: script_id, line_no, page, text, indent,
gap_before, x0, y0, x1, y1, optional page_height), lines of each script in reading order. The dense
block, by feature group:

- text: what the line looks like (caps, brackets, `INT.`/`EXT.`, `TO:`, numbers in the margins...);
- layout: where it sits *relative to this script's own layout* (each script's indents are clustered
  into levels, so a cue at column 37 in one script and 30 in another both land on "the cue level"),
  its block (run of lines without a gap), its page (running headers/footers), how this script wraps
  dialogue and action;
- neighbours: some of the above for the lines at ±1, ±2;
- reading state: open brackets, lines since the last cue or heading, first page, right-aligned runs.

A second family, `proba_context_features`, turns first-stage class probabilities into features of
the neighbours, the block, the line's indent level and the other lines with the same text; the
classifier's second stage reads them.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Sequence

import numpy as np
import pandas as pd

from models.lines.labels import N_CLASSES
from models.lines.reading_cues import READING_CUE_FEATURES, reading_cue_block
from store.types import LABELS, ScriptlabelError

REQUIRED_COLUMNS = ("script_id", "line_no", "page", "text", "indent", "gap_before", "x0", "y0", "x1", "y1")


class FeatureInputError(ScriptlabelError, ValueError):
    pass


@dataclass(frozen=True)
class FeatureConfig:
    """Everything that shapes the features; saved beside a model as JSON."""

    context_offsets: tuple[int, ...] = (-2, -1, 1, 2)
    proba_offsets: tuple[int, ...] = (-3, -2, -1, 1, 2, 3)
    level_tolerance: float = 2.0  # indents closer than this (columns) are one level
    min_level_share: float = 0.02  # a level needs this share of the script's lines
    block_gap: float = 0.5  # a gap_before above this starts a new block
    exclude: tuple[str, ...] = ()  # dense features left out (ablations)
    feature_set: int = 5  # 1: before the page-furniture features, 2: before the state features, 3: before the
    # right-aligned text features, 4: before the reading cues of `models.lines.reading_cues` (models saved
    # then leave them out)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "FeatureConfig":
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        # Older configs also carry the n-gram settings of a sparse block no model reads: ignored.
        for key in ("context_offsets", "proba_offsets", "exclude"):
            if key in known:
                known[key] = tuple(known[key])
        if "feature_set" not in known:  # saved by a version that had feature set 1
            known["feature_set"] = 1
            known["exclude"] = tuple(known.get("exclude", ())) + PAGE_FURNITURE_FEATURES
        if int(known["feature_set"]) < 3:  # saved before the state features existed
            known["exclude"] = tuple(known.get("exclude", ())) + STATE_FEATURES
        elif int(known["feature_set"]) < 4:  # saved before the right-aligned text features existed
            known["exclude"] = tuple(known.get("exclude", ())) + RIGHT_TEXT_FEATURES
        if int(known["feature_set"]) < 5:  # saved before the reading cues existed
            known["exclude"] = tuple(known.get("exclude", ())) + READING_CUE_FEATURES
        return cls(**known)


def validate_lines(X: pd.DataFrame) -> None:
    if not isinstance(X, pd.DataFrame):
        raise FeatureInputError(f"lines must be a pandas DataFrame with columns {', '.join(REQUIRED_COLUMNS)}")
    missing = [c for c in REQUIRED_COLUMNS if c not in X.columns]
    if missing:
        raise FeatureInputError(
            f"the line frame lacks column(s) {', '.join(missing)}; it needs {', '.join(REQUIRED_COLUMNS)}"
        )


def script_order(X: pd.DataFrame) -> list[np.ndarray]:
    """Row positions of each script, in reading order (line_no, ties by row order)."""
    codes, _ = pd.factorize(X["script_id"], sort=False)
    line_no = X["line_no"].to_numpy(dtype=float)
    order = np.lexsort((np.arange(len(X)), line_no, codes))
    bounds = np.flatnonzero(np.diff(codes[order])) + 1
    return [chunk for chunk in np.split(order, bounds) if len(chunk)]


# --- what a line's text looks like ---------------------------------------------------------------

_SCENE = re.compile(r"^\W*(?:[\d.]+[A-Z]{0,2}\W*)?(?:INT|EXT|I/E|E/I|INT\s*/\s*EXT|EXT\s*/\s*INT|INTERIOR|EXTERIOR)\b[\.\s/:-]", re.I)
_TIME = re.compile(r"(?:-|–|,|\s)\s*(?:DAY|NIGHT|MORNING|EVENING|AFTERNOON|DUSK|DAWN|SUNSET|SUNRISE|CONTINUOUS|LATER|SAME|MOMENTS LATER|NOON|MIDNIGHT)\b", re.I)
_TRANSITION = re.compile(r"\b(?:CUT|FADE|DISSOLVE|SMASH|MATCH|WIPE|INTERCUT|JUMP|IRIS|BACK)\b.*\b(?:TO|IN|OUT|WITH)\b|^(?:FADE|CUT)\s+(?:IN|OUT|TO)|INTERCUT", re.I)
_TO_COLON = re.compile(r"\bTO\s*:\s*$", re.I)
_EXTENSION = re.compile(r"\((?:V\.?\s*O|O\.?\s*S|O\.?\s*C|CONT|OFF|ON\s|INTO|FILTER|PRE-?LAP|SUBTITLE|\s*CONT)", re.I)
_CONTINUED = re.compile(r"CONTINUED|CONT'D|CONT’D|\(MORE\)|\bMORE\)|^\(?MORE\)?$", re.I)
_LEAD_NUM = re.compile(r"^\W*\d+[A-Z]{0,2}\b")
_TRAIL_NUM = re.compile(r"\b\d+[A-Z]{0,2}\W*$")
_NUM_ONLY = re.compile(r"^\W*\d+[A-Z]{0,2}\W*\.?\W*$")
_PAGE = re.compile(r"^(?:page\s*)?\d+\s*\.?$|^\d+\s*/\s*\d+$|P\s?a\s?g\s?e", re.I)
_REVISION = re.compile(r"\b(?:REV(?:ISED|ISION)?|DRAFT|PINK|BLUE|YELLOW|GOLDENROD|SALMON|CHERRY|BUFF|GREEN)\b|\d{1,2}/\d{1,2}/\d{2,4}", re.I)
_SHOT = re.compile(r"^\W*(?:\d+[A-Z]?\W*)?(?:ANGLE|CLOSE|CLOSEUP|CLOSE-UP|WIDE|POV|INSERT|BACK TO|ON\s|OVER|MONTAGE|SERIES OF|FLASHBACK|SUPER|TITLE|LATER|MOMENTS LATER)\b", re.I)
_TITLE_PAGE = re.compile(r"\b(?:written by|screenplay by|story by|by\b|based on|draft|copyright|©|all rights reserved)", re.I)
# Scene numbers and revision asterisks printed in the margins, around the line's own text.
_MARGIN_LEFT = re.compile(r"^(?:\*\s*)?[A-Z]?\d{1,4}(?:\.\d{1,3})?[A-Z]{0,3}\.?\*?(?:\s{2,}|\t|\s(?=[A-Z(]))")
_MARGIN_RIGHT = re.compile(r"(?:\s{2,}|\s(?=\*))(?:\*?[A-Z]?\d{1,4}[A-Z]{0,3}\.?\*?|\*+)\s*$")
_UPPER = re.compile(r"[A-Z]")
_LOWER = re.compile(r"[a-z]")
_DIGIT = re.compile(r"\d")
_PUNCT = re.compile(r"[^\w\s]")

TEXT_FEATURES = (
    "n_chars", "n_tokens", "n_alpha", "upper_ratio", "all_caps", "starts_lower", "title_ratio",
    "digit_ratio", "punct_ratio", "starts_paren", "ends_paren", "has_paren", "paren_whole",
    "extension", "ends_colon", "to_colon", "transition_kw", "scene_prefix", "scene_time", "has_dash_sep",
    "lead_num", "trail_num", "same_lead_trail", "num_only", "page_like", "continued", "revision",
    "shot_kw", "ends_period", "ends_qe", "ends_comma", "ends_dash", "ends_ellipsis", "star_end",
    "title_page_kw", "first_word_caps", "caps_prefix_len", "margin_left", "margin_right", "core_offset",
)


def split_margins(text: str) -> tuple[str, int, bool, bool]:
    """(core text, offset of the core in the stripped text, left margin mark?, right margin mark?)."""
    t = text.strip()
    offset = 0
    left = right = False
    m = _MARGIN_RIGHT.search(t)
    if m and m.start() > 0:
        t, right = t[: m.start()].rstrip(), True
    m = _MARGIN_LEFT.match(t)
    if m and m.end() < len(t):
        offset, left = m.end(), True
        number = m.group().strip(" \t*.")
        t = t[m.end():]
        # The same scene number repeated in the right margin, one space away in PDF text.
        if not right and t.rstrip(" *").endswith(" " + number):
            t, right = t.rstrip(" *")[: -len(number) - 1].rstrip(), True
    return t, offset, left, right


def _text_row(raw: str, core: tuple[str, int, bool, bool]) -> tuple:
    t, offset, margin_left, margin_right = core
    n = len(t)
    tokens = t.split()
    n_upper = len(_UPPER.findall(t))
    n_lower = len(_LOWER.findall(t))
    n_alpha = n_upper + n_lower
    n_digit = len(_DIGIT.findall(t))
    n_punct = len(_PUNCT.findall(t))
    lead = _LEAD_NUM.match(raw)
    trail = _TRAIL_NUM.search(raw)
    same = bool(lead and trail and lead.group().strip(" .*") == trail.group().strip(" .*") and len(raw.split()) > 1)
    first = tokens[0] if tokens else ""
    caps_prefix = 0
    for tok in tokens:
        if tok.upper() == tok and tok.lower() != tok:
            caps_prefix += 1
        else:
            break
    first_alpha = _LOWER.search(t) or _UPPER.search(t)
    last = t[-1:] if t else ""
    return (
        n,
        len(tokens),
        n_alpha,
        n_upper / n_alpha if n_alpha else -1.0,
        float(n_alpha > 0 and n_lower == 0),
        float(bool(first_alpha) and first_alpha.group().islower()),
        sum(tok[:1].isupper() for tok in tokens) / len(tokens) if tokens else 0.0,
        n_digit / n if n else 0.0,
        n_punct / n if n else 0.0,
        float(t.startswith("(")),
        float(t.endswith(")")),
        float("(" in t),
        float(t.startswith("(") and t.endswith(")")),
        float(bool(_EXTENSION.search(t))),
        float(t.endswith(":")),
        float(bool(_TO_COLON.search(t))),
        float(bool(_TRANSITION.search(t))),
        float(bool(_SCENE.match(t))),
        float(bool(_TIME.search(t))),
        float(" - " in t or "--" in t or " – " in t),
        float(bool(lead)),
        float(bool(trail)),
        float(same),
        float(bool(_NUM_ONLY.match(raw))),
        float(bool(_PAGE.search(raw))),
        float(bool(_CONTINUED.search(raw))),
        float(bool(_REVISION.search(raw))),
        float(bool(_SHOT.match(t))),
        float(last == "."),
        float(last in "!?"),
        float(last in ",;"),
        float(t.endswith("-") or t.endswith("—")),
        float(t.endswith("...") or t.endswith("…")),
        float(raw.endswith("*")),
        float(bool(_TITLE_PAGE.search(t))),
        float(bool(first) and first.upper() == first and first.lower() != first),
        float(caps_prefix),
        float(margin_left),
        float(margin_right),
        float(offset),
    )


def text_features(texts, cores: Sequence[tuple] | None = None) -> np.ndarray:
    raws = ["" if t is None else str(t).strip() for t in texts]
    cores = cores if cores is not None else [split_margins(t) for t in raws]
    rows = [_text_row(raw, core) for raw, core in zip(raws, cores)]
    return np.asarray(rows, dtype=np.float32).reshape(len(rows), len(TEXT_FEATURES))


# --- this script's layout ---------------------------------------------------------------------


def indent_levels(indent: np.ndarray, *, tolerance: float = 2.0, min_share: float = 0.02) -> np.ndarray:
    """Centers of the script's common indents: nearby indents merge into one level.

    Indents are histogrammed by whole column, neighbouring occupied columns (closer than
    `tolerance`) chain into one cluster, and clusters with at least `min_share` of the lines are
    levels (at least one level always). Returns sorted centers (weighted means).
    """
    indent = np.asarray(indent, dtype=float)
    indent = indent[np.isfinite(indent)]
    if len(indent) == 0:
        return np.array([0.0])
    cols, counts = np.unique(np.round(indent), return_counts=True)
    clusters: list[tuple[float, int]] = []
    start = 0
    for i in range(1, len(cols) + 1):
        if i == len(cols) or cols[i] - cols[i - 1] > tolerance:
            c, w = cols[start:i], counts[start:i]
            clusters.append((float((c * w).sum() / w.sum()), int(w.sum())))
            start = i
    total = len(indent)
    levels = [center for center, n in clusters if n >= max(2, min_share * total)]
    if not levels:
        levels = [max(clusters, key=lambda cw: cw[1])[0]]
    return np.array(sorted(levels))


LAYOUT_FEATURES = (
    "indent", "indent_rel_margin", "indent_rel_main", "level_rank", "level_rank_rev", "n_levels",
    "level_dist", "level_share", "lvl_all_caps", "lvl_n_chars", "lvl_paren", "lvl_gap", "lvl_scene",
    "lvl_lower", "right_rel", "center_rel", "width", "gap_before", "gap_after", "page_pos",
    "first_on_page", "last_on_page", "pos_in_block", "block_len", "from_block_end", "block_first_caps",
    "block_first_indent_rel", "indent_minus_block_first", "block_first_paren", "block_first_n_chars",
    "text_repeat", "text_repeat_caps_share", "block_max_chars", "block_max_rel", "n_chars_rel",
    "raw_indent", "starts_with_name", "names_in_line", "prev_room", "prev_room_rel", "next_room_rel",
    "prev_n_chars_rel", "dlg_width", "act_width", "n_chars_vs_dlg", "n_chars_vs_act", "prev_room_vs_dlg",
    "block_max_vs_dlg", "block_max_vs_act", "indent_vs_dlg", "indent_vs_act", "dlg_act_indent_gap",
    "cue_gap_share", "after_cue", "since_sentence_end", "template_repeat", "template_variants",
    "page_rank", "page_rank_rev", "template_edge_share", "template_pos_spread",
)
PAGE_FURNITURE_FEATURES = ("page_rank", "page_rank_rev", "template_edge_share", "template_pos_spread")

_NAME_TOKEN = re.compile(r"[A-Za-z][A-Za-z'.\-]*")
_NOT_NAMES = frozenset({"INT", "EXT", "CUT", "FADE", "DISSOLVE", "THE", "CONTINUED", "MORE", "CONT'D", "A", "AN",
                        "I", "TO", "OF", "AND", "ON", "IN", "BACK", "ANGLE", "CLOSE", "LATER", "DAY", "NIGHT"})


def cue_names(texts: Sequence[str], cores: Sequence[str] | None = None) -> frozenset[str]:
    """Words of this script's likely speaker cues: short all-caps lines that recur (extensions dropped)."""
    counts: dict[str, int] = {}
    cores = cores if cores is not None else [split_margins(str(t))[0] for t in texts]
    for core in cores:
        if len(core) > 60:
            continue
        core = re.sub(r"\s*\(.*$", "", core).strip()
        if not core or len(core) > 30 or core.upper() != core or core.lower() == core or ":" in core:
            continue
        if _SCENE.match(core) or _TRANSITION.search(core):
            continue
        counts[core] = counts.get(core, 0) + 1
    names = set()
    for cue, n in counts.items():
        if n >= 2:
            names.update(w.strip(".'") for w in cue.split() if len(w.strip(".'")) > 1)
    return frozenset(names - _NOT_NAMES)


@dataclass
class _ScriptLayout:
    """One script's columns (rows in reading order), shared by the layout feature groups; each group
    writes its columns of `out` and may leave values the later groups read (`margin`, `starts`...)."""

    frame: pd.DataFrame
    txt: np.ndarray  # the text-feature block
    cores: list[str]  # texts without margin marks
    config: FeatureConfig
    out: np.ndarray
    n: int = 0
    col: dict = field(default_factory=lambda: {name: i for i, name in enumerate(TEXT_FEATURES)})
    f: dict = field(default_factory=lambda: {name: i for i, name in enumerate(LAYOUT_FEATURES)})

    def __post_init__(self):
        frame = self.frame
        self.n = len(frame)
        self.raw_indent = frame["indent"].to_numpy(dtype=float)
        self.indent = self.raw_indent + self.txt[:, self.col["core_offset"]]
        self.gap = np.nan_to_num(frame["gap_before"].to_numpy(dtype=float), nan=0.0)
        self.x0, self.x1 = frame["x0"].to_numpy(dtype=float), frame["x1"].to_numpy(dtype=float)
        self.y0, self.y1 = frame["y0"].to_numpy(dtype=float), frame["y1"].to_numpy(dtype=float)
        self.page = frame["page"].to_numpy()


def _layout_block(frame: pd.DataFrame, txt: np.ndarray, cores: list[str], config: FeatureConfig) -> np.ndarray:
    """Layout features of one script (rows in reading order); `txt` is its text-feature block,
    `cores` its texts without margin marks. One function per feature group, in this order."""
    s = _ScriptLayout(frame, txt, cores, config, np.full((len(frame), len(LAYOUT_FEATURES)), np.nan, dtype=np.float32))
    for group in (_level_group, _geometry_group, _block_group, _repeat_group, _width_group, _wrap_group,
                  _anchor_group):
        group(s)
    return s.out


def _level_group(s: _ScriptLayout) -> None:
    """The script's indent levels: which one a line sits on, and what the lines there look like."""
    out, f, txt, col, n = s.out, s.f, s.txt, s.col, s.n
    indent, gap, config = s.indent, s.gap, s.config
    levels = indent_levels(indent, tolerance=config.level_tolerance, min_share=config.min_level_share)
    nearest = np.abs(indent[:, None] - levels[None, :]).argmin(axis=1) if n else np.array([], int)
    share = np.bincount(nearest, minlength=len(levels)) / max(n, 1)
    margin = levels[np.flatnonzero(share >= 0.05)[0]] if (share >= 0.05).any() else levels[0]
    main = levels[int(share.argmax())]
    out[:, f["indent"]] = indent
    out[:, f["indent_rel_margin"]] = indent - margin
    out[:, f["indent_rel_main"]] = indent - main
    out[:, f["level_rank"]] = nearest
    out[:, f["level_rank_rev"]] = len(levels) - 1 - nearest
    out[:, f["n_levels"]] = len(levels)
    out[:, f["level_dist"]] = indent - levels[nearest]
    out[:, f["level_share"]] = share[nearest]

    def level_mean(values: np.ndarray) -> np.ndarray:
        sums = np.bincount(nearest, weights=values, minlength=len(levels))
        return (sums / np.maximum(np.bincount(nearest, minlength=len(levels)), 1))[nearest]

    out[:, f["lvl_all_caps"]] = level_mean(txt[:, col["all_caps"]])
    out[:, f["lvl_n_chars"]] = level_mean(txt[:, col["n_chars"]])
    out[:, f["lvl_paren"]] = level_mean(txt[:, col["starts_paren"]])
    out[:, f["lvl_gap"]] = level_mean((gap > config.block_gap).astype(float))
    out[:, f["lvl_scene"]] = level_mean(txt[:, col["scene_prefix"]])
    out[:, f["lvl_lower"]] = level_mean(txt[:, col["starts_lower"]])
    s.margin = margin


def _geometry_group(s: _ScriptLayout) -> None:
    """Right edge, centre, width, gaps, position on the page."""
    out, f, n = s.out, s.f, s.n
    x0, x1, y0, y1, gap, page, frame = s.x0, s.x1, s.y0, s.y1, s.gap, s.page, s.frame
    right = np.nanpercentile(x1, 95) if n else 0.0
    center = np.nanmedian((x0 + x1) / 2) if n else 0.0
    out[:, f["right_rel"]] = x1 - right
    out[:, f["center_rel"]] = (x0 + x1) / 2 - center
    out[:, f["width"]] = x1 - x0
    out[:, f["gap_before"]] = np.clip(gap, 0, 10)
    out[:, f["gap_after"]] = np.append(np.clip(gap[1:], 0, 10), np.nan)

    # Page position only means something when the source has pages (PDF, or text with form feeds).
    if len(np.unique(page)) > 1:
        page_codes = pd.factorize(page)[0]
        top = pd.Series(y0).groupby(page_codes).transform("min").to_numpy()
        bottom = pd.Series(y1).groupby(page_codes).transform("max").to_numpy()
        if "page_height" in frame.columns and frame["page_height"].notna().all():
            top, bottom = np.zeros(n), frame["page_height"].to_numpy(dtype=float)
        out[:, f["page_pos"]] = (y0 - top) / np.maximum(bottom - top, 1e-6)
        change = np.diff(page_codes) != 0
        out[:, f["first_on_page"]] = np.concatenate([[1.0], change])
        out[:, f["last_on_page"]] = np.concatenate([change, [1.0]])


def _block_group(s: _ScriptLayout) -> None:
    """The block (run of lines without a gap) a line sits in, and the block's first line."""
    out, f, txt, col, n = s.out, s.f, s.txt, s.col, s.n
    gap, page, config, indent, margin = s.gap, s.page, s.config, s.indent, s.margin
    starts = np.concatenate([[True], (gap[1:] > config.block_gap) | (page[1:] != page[:-1])]) if n else np.array([], bool)
    block = np.cumsum(starts) - 1
    first_idx = np.flatnonzero(starts)[block]
    block_len = np.bincount(block)[block]
    pos = np.arange(n) - first_idx
    out[:, f["pos_in_block"]] = pos
    out[:, f["block_len"]] = block_len
    out[:, f["from_block_end"]] = block_len - 1 - pos
    out[:, f["block_first_caps"]] = txt[first_idx, col["all_caps"]]
    out[:, f["block_first_indent_rel"]] = indent[first_idx] - margin
    out[:, f["indent_minus_block_first"]] = indent - indent[first_idx]
    out[:, f["block_first_paren"]] = txt[first_idx, col["starts_paren"]]
    out[:, f["block_first_n_chars"]] = txt[first_idx, col["n_chars"]]
    s.starts, s.block = starts, block


def _repeat_group(s: _ScriptLayout) -> None:
    """Text that comes back: cues, running headers and footers."""
    out, f, txt, col = s.out, s.f, s.txt, s.col
    frame = s.frame
    # A character cue repeats through a script; a line of action rarely does.
    keys = pd.Series(frame["text"].astype(str).str.strip().str.upper().to_numpy())
    keys = keys.str.replace(r"\s*\(.*$", "", regex=True)
    repeats = keys.map(keys.value_counts()).to_numpy(dtype=float)
    out[:, f["text_repeat"]] = np.log1p(repeats - 1)
    caps = pd.Series(txt[:, col["all_caps"]]).groupby(keys.to_numpy()).transform("mean").to_numpy()
    out[:, f["text_repeat_caps_share"]] = caps
    # Running headers/footers repeat with a changing page number ("TITLE  Revised  130.").
    raw_keys = pd.Series(frame["text"].astype(str).str.split().str.join(" ").to_numpy())
    templates = raw_keys.str.replace(r"\d+", "#", regex=True)
    out[:, f["template_repeat"]] = np.log1p(templates.map(templates.value_counts()).to_numpy(dtype=float) - 1)
    variants = raw_keys.groupby(templates.to_numpy()).transform("nunique").to_numpy(dtype=float)
    out[:, f["template_variants"]] = np.log1p(variants - 1)
    _page_furniture(out, f, templates.to_numpy(), s.page, s.y0)


def _width_group(s: _ScriptLayout) -> None:
    """Line lengths against the block's longest line and the script's widest lines."""
    out, f, txt, col, n = s.out, s.f, s.txt, s.col, s.n
    block, raw_indent = s.block, s.raw_indent
    # Dialogue wraps narrower than action: the longest line of the block tells which it is.
    n_chars = txt[:, col["n_chars"]]
    block_max = np.zeros(block.max() + 1 if n else 0)
    np.maximum.at(block_max, block, n_chars)
    wide = max(float(np.percentile(n_chars, 95)), 1.0) if n else 1.0
    out[:, f["block_max_chars"]] = block_max[block]
    out[:, f["block_max_rel"]] = block_max[block] / wide
    out[:, f["n_chars_rel"]] = n_chars / wide
    out[:, f["raw_indent"]] = raw_indent
    s.n_chars, s.block_max, s.wide = n_chars, block_max, wide


def _wrap_group(s: _ScriptLayout) -> None:
    """Names that open a line, and whether its first word would have fit on the line above."""
    out, f, n = s.out, s.f, s.n
    frame, cores, n_chars, wide = s.frame, s.cores, s.n_chars, s.wide
    # Action often opens on a character's name ("Jay takes the phone."); the script's cues say
    # which words are names. Wrapping says more: a line whose first word would have fit on the
    # line above starts a new paragraph, even without a blank line.
    texts = frame["text"].to_numpy()
    names = cue_names(texts, cores)
    name_start = np.zeros(n, dtype=np.float32)
    mentions = np.zeros(n, dtype=np.float32)
    first_len = np.zeros(n, dtype=np.float32)
    for i, core in enumerate(cores):
        tokens = _NAME_TOKEN.findall(core)
        if tokens:
            first_len[i] = len(core.split()[0]) if core.split() else 0
            head = tokens[0].upper().removesuffix("'S").strip(".'")
            name_start[i] = float(head in names and tokens[0] != tokens[0].upper())
            mentions[i] = sum(1 for t in tokens if t != t.upper() and t.upper().removesuffix("'S") in names)
    out[:, f["starts_with_name"]] = name_start
    out[:, f["names_in_line"]] = mentions
    prev_chars = np.concatenate([[np.nan], n_chars[:-1]]) if n else n_chars
    prev_room = prev_chars + 1 + first_len
    out[:, f["prev_room"]] = prev_room
    out[:, f["prev_room_rel"]] = prev_room / wide
    next_room = n_chars + 1 + np.append(first_len[1:], np.nan)
    out[:, f["next_room_rel"]] = next_room / wide
    out[:, f["prev_n_chars_rel"]] = prev_chars / wide
    s.prev_room = prev_room


def _anchor_group(s: _ScriptLayout) -> None:
    """How this script sets dialogue apart from action, learned from unlabeled anchors; cue distance."""
    out, f, txt, col, n = s.out, s.f, s.txt, s.col, s.n
    gap, starts, config, indent, n_chars, block, block_max, prev_room = (
        s.gap, s.starts, s.config, s.indent, s.n_chars, s.block, s.block_max, s.prev_room)
    # Anchors found without labels: the line right after a cue-like line is (nearly always)
    # dialogue, the first line of a block that is neither caps nor bracketed is mostly action.
    # Their widths and indents say how *this* script sets dialogue apart from action.
    all_caps = txt[:, col["all_caps"]] > 0
    cue_like = all_caps & (txt[:, col["n_tokens"]] <= 5) & (txt[:, col["scene_prefix"]] == 0) & (
        txt[:, col["to_colon"]] == 0) & (txt[:, col["num_only"]] == 0)
    prev_cue = np.concatenate([[False], cue_like[:-1]]) if n else cue_like
    paren = txt[:, col["starts_paren"]] > 0
    dlg_anchor = prev_cue & ~paren & ~all_caps & (gap <= config.block_gap)
    act_anchor = starts & ~all_caps & ~paren & ~prev_cue & (txt[:, col["n_chars"]] > 0)
    dlg_width = float(np.percentile(n_chars[dlg_anchor], 90)) if dlg_anchor.sum() >= 3 else np.nan
    act_width = float(np.percentile(n_chars[act_anchor], 90)) if act_anchor.sum() >= 3 else np.nan
    dlg_indent = float(np.median(indent[dlg_anchor])) if dlg_anchor.sum() >= 3 else np.nan
    act_indent = float(np.median(indent[act_anchor])) if act_anchor.sum() >= 3 else np.nan
    out[:, f["dlg_width"]] = dlg_width
    out[:, f["act_width"]] = act_width
    out[:, f["n_chars_vs_dlg"]] = n_chars / dlg_width
    out[:, f["n_chars_vs_act"]] = n_chars / act_width
    out[:, f["prev_room_vs_dlg"]] = prev_room / dlg_width
    out[:, f["block_max_vs_dlg"]] = block_max[block] / dlg_width
    out[:, f["block_max_vs_act"]] = block_max[block] / act_width
    out[:, f["indent_vs_dlg"]] = indent - dlg_indent
    out[:, f["indent_vs_act"]] = indent - act_indent
    out[:, f["dlg_act_indent_gap"]] = abs(dlg_indent - act_indent)
    out[:, f["cue_gap_share"]] = float((gap[cue_like] > config.block_gap).mean()) if cue_like.any() else np.nan
    # Lines since the last cue-like line within the block (NaN: no cue above in the block).
    after = np.full(n, np.nan, dtype=np.float32)
    since_end = np.zeros(n, dtype=np.float32)
    last_cue, ended = -1, 0
    ends_sentence = (txt[:, col["ends_period"]] + txt[:, col["ends_qe"]] + txt[:, col["ends_paren"]]) > 0
    for i in range(n):
        if starts[i]:
            last_cue, ended = -1, 0
        if last_cue >= 0:
            after[i] = i - last_cue
        since_end[i] = ended
        if cue_like[i]:
            last_cue, ended = i, 0
        elif ends_sentence[i]:
            ended += 1
    out[:, f["after_cue"]] = after
    out[:, f["since_sentence_end"]] = since_end


CONTEXT_SOURCE = (
    "gap_before", "indent_rel_margin", "level_rank", "all_caps", "upper_ratio", "starts_paren",
    "ends_paren", "n_chars", "scene_prefix", "ends_colon", "extension", "starts_lower", "ends_period",
    "num_only", "continued", "text_repeat", "ends_qe", "ends_comma", "ends_dash", "ends_ellipsis",
    "starts_with_name", "n_chars_vs_dlg", "indent_vs_dlg", "template_variants",
)


def _page_furniture(out: np.ndarray, f: dict[str, int], templates: np.ndarray, page: np.ndarray, y0: np.ndarray) -> None:
    """Running headers and footers: lines at a page's edge whose text (numbers masked) comes back at
    the edge of most pages, always at about the same height."""
    n = len(templates)
    if n == 0 or len(pd.unique(page)) < 2:
        return
    codes = pd.factorize(page)[0]
    rank = pd.Series(np.arange(n)).groupby(codes).rank(method="first").to_numpy() - 1
    size = np.bincount(codes)[codes]
    rank_rev = size - 1 - rank
    out[:, f["page_rank"]] = np.minimum(rank, 5)
    out[:, f["page_rank_rev"]] = np.minimum(rank_rev, 5)
    edge = (rank <= 1) | (rank_rev <= 1)
    n_pages = codes.max() + 1
    frame = pd.DataFrame({"t": templates, "p": codes, "edge": edge, "y": y0})
    edge_pages = frame[frame["edge"]].groupby("t")["p"].nunique()
    out[:, f["template_edge_share"]] = frame["t"].map(edge_pages).fillna(0).to_numpy(dtype=float) / n_pages
    spread = frame.groupby("t")["y"].transform("std").to_numpy(dtype=float)
    out[:, f["template_pos_spread"]] = np.minimum(spread, 500.0)


def dense_feature_names(config: FeatureConfig = FeatureConfig()) -> list[str]:
    names = list(TEXT_FEATURES) + list(LAYOUT_FEATURES)
    for off in config.context_offsets:
        names += [f"{name}@{off:+d}" for name in CONTEXT_SOURCE]
        names.append(f"indent_diff@{off:+d}")
    return names + list(STATE_FEATURES) + list(READING_CUE_FEATURES)


# --- where the reader is: state carried from line to line ---------------------------------------

STATE_FEATURES = (
    "paren_depth", "paren_depth_after", "paren_run_pos", "since_cue", "since_cue_in_block", "since_scene",
    "before_first_scene", "script_pos", "line_index_log", "first_page", "first_page_lines",
    "right_aligned", "block_right_share", "block_caps_share", "right_text", "block_right_text_share",
)
RIGHT_TEXT_FEATURES = ("right_text", "block_right_text_share")


def _state_block(frame: pd.DataFrame, txt: np.ndarray, lay: np.ndarray, config: FeatureConfig) -> np.ndarray:
    """What a reader carries from line to line (one script, reading order): how many brackets are
    open (the continuation lines of a multi-line parenthetical sit at the dialogue indent), how far
    back the last cue and scene heading are, whether a heading has been seen at all (an excerpt's
    first lines are mid-scene, not a title page), and right-aligned runs (multi-line transitions)."""
    n = len(frame)
    col = {name: i for i, name in enumerate(TEXT_FEATURES)}
    lcol = {name: i for i, name in enumerate(LAYOUT_FEATURES)}
    out = np.full((n, len(STATE_FEATURES)), np.nan, dtype=np.float32)
    if n == 0:
        return out
    f = {name: i for i, name in enumerate(STATE_FEATURES)}
    texts = frame["text"].astype(str).to_numpy()
    gap = np.nan_to_num(frame["gap_before"].to_numpy(dtype=float), nan=0.0)
    page = frame["page"].to_numpy()
    starts = np.concatenate([[True], (gap[1:] > config.block_gap) | (page[1:] != page[:-1])])
    _bracket_state(out, f, texts, starts)
    _distance_state(out, f, txt, col, starts)
    out[:, f["script_pos"]] = np.arange(n) / max(n - 1, 1)
    out[:, f["line_index_log"]] = np.log1p(np.arange(n))
    first = page == page[0]
    out[:, f["first_page"]] = first
    out[:, f["first_page_lines"]] = np.log1p(first.sum())
    # Right-aligned: ends at the right edge of the text column, starts well right of the main level.
    # (x is in points for PDFs, in columns for text: compare within the script's own span.)
    x0, x1 = frame["x0"].to_numpy(dtype=float), frame["x1"].to_numpy(dtype=float)
    edge = np.nanpercentile(x1, 95)
    span = max(edge - np.nanpercentile(x0, 5), 1e-6)
    right = (x1 > edge - 0.04 * span) & (lay[:, lcol["indent_rel_main"]] > 20.0)
    out[:, f["right_aligned"]] = right
    block = np.cumsum(starts) - 1
    counts = np.bincount(block)
    out[:, f["block_right_share"]] = (np.bincount(block, weights=right) / counts)[block]
    out[:, f["block_caps_share"]] = (np.bincount(block, weights=txt[:, col["all_caps"]]) / counts)[block]
    text = right_aligned_text(right, txt, lay)
    out[:, f["right_text"]] = text
    out[:, f["block_right_text_share"]] = (np.bincount(block, weights=text) / counts)[block]
    return out


def right_aligned_text(right: np.ndarray, txt: np.ndarray, lay: np.ndarray) -> np.ndarray:
    """Right-aligned lines that are not page furniture: the stylized transitions set flush right as
    phrases ("CUT TO: THE HARBOUR" / "AT DAWN"). Flush right is also where page numbers,
    running headers and "(CONTINUED)" sit, which `right_aligned` alone cannot tell from a transition;
    furniture is text (numbers masked) that comes back at the edge of many pages at about the same height.
    Both paths agree on it: a text-layer and an OCR line end within a few points of each other."""
    col = {name: i for i, name in enumerate(TEXT_FEATURES)}
    lcol = {name: i for i, name in enumerate(LAYOUT_FEATURES)}
    spread = np.nan_to_num(lay[:, lcol["template_pos_spread"]], nan=np.inf)
    furniture = (np.nan_to_num(lay[:, lcol["template_edge_share"]]) >= 0.3) & (spread < 12.0)
    words = txt[:, col["n_alpha"]] >= 2
    not_page = (txt[:, col["page_like"]] == 0) & (txt[:, col["continued"]] == 0)
    return (right.astype(bool) & ~furniture & words & not_page).astype(np.float32)


def _bracket_state(out: np.ndarray, f: dict[str, int], texts: np.ndarray, starts: np.ndarray) -> None:
    depth, run = 0, 0
    for i, text in enumerate(texts):
        if starts[i]:
            depth, run = 0, 0
        run = run + 1 if depth > 0 else 0
        out[i, f["paren_depth"]] = min(depth, 3)
        out[i, f["paren_run_pos"]] = run
        depth = max(0, depth + text.count("(") - text.count(")"))
        out[i, f["paren_depth_after"]] = min(depth, 3)


def _distance_state(out: np.ndarray, f: dict[str, int], txt: np.ndarray, col: dict[str, int], starts: np.ndarray) -> None:
    cue = (txt[:, col["all_caps"]] > 0) & (txt[:, col["n_tokens"]] <= 5) & (txt[:, col["scene_prefix"]] == 0) & (
        txt[:, col["to_colon"]] == 0) & (txt[:, col["num_only"]] == 0)
    scene = txt[:, col["scene_prefix"]] > 0
    last_cue = last_scene = last_cue_block = -1
    for i in range(len(txt)):
        if starts[i]:
            last_cue_block = -1
        out[i, f["since_cue"]] = min(i - last_cue, 50) if last_cue >= 0 else 50
        out[i, f["since_cue_in_block"]] = i - last_cue_block if last_cue_block >= 0 else -1
        out[i, f["since_scene"]] = min(i - last_scene, 200) if last_scene >= 0 else 200
        out[i, f["before_first_scene"]] = float(last_scene < 0)
        if cue[i]:
            last_cue = last_cue_block = i
        if scene[i]:
            last_scene = i


def dense_features(X: pd.DataFrame, config: FeatureConfig = FeatureConfig()) -> np.ndarray:
    """The dense block (text look, script-relative layout, neighbours), rows aligned with X."""
    validate_lines(X)
    n = len(X)
    cores_all = [split_margins("" if t is None else str(t)) for t in X["text"].to_numpy()]
    txt_all = text_features(X["text"].to_numpy(), cores_all)
    names = dense_feature_names(config)
    out = np.full((n, len(names)), np.nan, dtype=np.float32)
    n_txt, n_lay = len(TEXT_FEATURES), len(LAYOUT_FEATURES)
    base_index = {name: i for i, name in enumerate(list(TEXT_FEATURES) + list(LAYOUT_FEATURES))}
    src_cols = [base_index[name] for name in CONTEXT_SOURCE]
    for rows in script_order(X):
        frame = X.iloc[rows]
        txt = txt_all[rows]
        lay = _layout_block(frame, txt, [cores_all[r][0] for r in rows], config)
        own = np.hstack([txt, lay])
        tail = len(names) - len(READING_CUE_FEATURES)
        out[rows, tail - len(STATE_FEATURES): tail] = _state_block(frame, txt, lay, config)
        if "paren_depth_carry" not in config.exclude:  # feature set 5 (older models leave the block out)
            out[rows, tail:] = reading_cue_block(
                frame["text"].astype(str).to_numpy(), [cores_all[r][0] for r in rows],
                own[:, base_index["indent"]], frame["gap_before"].to_numpy(dtype=float), frame["page"].to_numpy(),
                block_gap=config.block_gap)
        out[rows, : n_txt + n_lay] = own
        indent = own[:, base_index["indent"]]
        k = n_txt + n_lay
        m = len(rows)
        for off in config.context_offsets:
            shifted = np.full((m, len(src_cols)), np.nan, dtype=np.float32)
            diff = np.full(m, np.nan, dtype=np.float32)
            if off < 0 and m > -off:
                shifted[-off:] = own[:off][:, src_cols]
                diff[-off:] = indent[-off:] - indent[:off]
            elif off > 0 and m > off:
                shifted[:-off] = own[off:][:, src_cols]
                diff[:-off] = indent[:-off] - indent[off:]
            out[rows, k : k + len(src_cols)] = shifted
            out[rows, k + len(src_cols)] = diff
            k += len(src_cols) + 1
    return out


# --- second stage: what the first stage thinks of the neighbours --------------------------------


def proba_feature_names(config: FeatureConfig = FeatureConfig()) -> list[str]:
    names = []
    for off in config.proba_offsets:
        names += [f"p_{label}@{off:+d}" for label in LABELS]
    for group in ("block", "block_first", "prev_block_last", "level", "same_text"):
        names += [f"p_{label}@{group}" for label in LABELS]
    names += [f"{what}_vs_{kind}_width" for what in WIDTH_SOURCES for kind in ("dialogue", "action")]
    return names


WIDTH_SOURCES = ("n_chars", "prev_room", "block_max_chars")


def _weighted_quantile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    ok = np.isfinite(values) & (weights > 0)
    if not ok.any():
        return np.nan
    v, w = values[ok], weights[ok]
    order = np.argsort(v)
    cum = np.cumsum(w[order])
    return float(v[order][np.searchsorted(cum, q * cum[-1])])


def proba_context_features(
    X: pd.DataFrame, proba: np.ndarray, config: FeatureConfig = FeatureConfig(), dense: np.ndarray | None = None
) -> np.ndarray:
    """Neighbours', block's, indent level's and same-text lines' first-stage probabilities, and
    line lengths against the widths at which this script wraps what stage 1 calls dialogue/action.

    `dense` (from `dense_features(X, config)`) is recomputed when not given.
    """
    n = len(X)
    if dense is None:
        dense = dense_features(X, config)
    dense_index = {name: i for i, name in enumerate(dense_feature_names(config))}
    width_cols = [dense_index[name] for name in WIDTH_SOURCES]
    p_dialogue, p_action = LABELS.index("dialogue"), LABELS.index("action")
    proba = np.asarray(proba, dtype=np.float32)
    if proba.shape != (n, N_CLASSES):
        raise FeatureInputError(f"probabilities must be ({n}, {N_CLASSES}), got {proba.shape}")
    names = proba_feature_names(config)
    out = np.full((n, len(names)), np.nan, dtype=np.float32)
    for rows in script_order(X):
        frame = X.iloc[rows]
        p = proba[rows]
        m = len(rows)
        blocks = []
        for off in config.proba_offsets:
            shifted = np.full((m, N_CLASSES), np.nan, dtype=np.float32)
            if off < 0 and m > -off:
                shifted[-off:] = p[:off]
            elif off > 0 and m > off:
                shifted[:-off] = p[off:]
            blocks.append(shifted)
        gap = np.nan_to_num(frame["gap_before"].to_numpy(dtype=float), nan=0.0)
        page = frame["page"].to_numpy()
        starts = np.concatenate([[True], (gap[1:] > config.block_gap) | (page[1:] != page[:-1])])
        block = np.cumsum(starts) - 1
        first_idx = np.flatnonzero(starts)
        sums = np.zeros((block.max() + 1, N_CLASSES), dtype=np.float64)
        np.add.at(sums, block, p)
        counts = np.bincount(block)[:, None]
        blocks.append((sums / counts)[block].astype(np.float32))
        blocks.append(p[first_idx[block]])
        prev_last = np.full((m, N_CLASSES), np.nan, dtype=np.float32)
        last_idx = np.append(first_idx[1:] - 1, m - 1)
        has_prev = block > 0
        prev_last[has_prev] = p[last_idx[block[has_prev] - 1]]
        blocks.append(prev_last)
        indent = dense[rows, dense_index["indent"]].astype(float)
        levels = indent_levels(indent, tolerance=config.level_tolerance, min_share=config.min_level_share)
        nearest = np.abs(indent[:, None] - levels[None, :]).argmin(axis=1)
        blocks.append(_group_mean_excluding_self(p, nearest))
        keys = frame["text"].astype(str).str.strip().str.upper().str.replace(r"\s*\(.*$", "", regex=True)
        blocks.append(_group_mean_excluding_self(p, pd.factorize(keys)[0]))
        n_chars = dense[rows, dense_index["n_chars"]]
        widths = []
        for kind in (p_dialogue, p_action):
            w = _weighted_quantile(n_chars, p[:, kind], 0.9)
            widths.append(w if np.isfinite(w) and w > 0 else np.nan)
        ratios = []
        for c in width_cols:
            for w in widths:
                ratios.append(dense[rows, c] / w)
        blocks.append(np.column_stack(ratios).astype(np.float32))
        out[rows] = np.hstack(blocks)
    return out


def _group_mean_excluding_self(p: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Mean of the other members' rows per group (NaN for a group of one)."""
    k = groups.max() + 1
    sums = np.zeros((k, p.shape[1]), dtype=np.float64)
    np.add.at(sums, groups, p)
    counts = np.bincount(groups, minlength=k)[groups][:, None].astype(np.float64)
    others = sums[groups] - p
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = others / (counts - 1)
    mean[counts[:, 0] <= 1] = np.nan
    return mean.astype(np.float32)
