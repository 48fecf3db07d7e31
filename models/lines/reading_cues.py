"""Feature set 5: what a reader uses where the zero-shot model slipped (issue 26).

One script's lines in reading order → `READING_CUE_FEATURES` columns, appended to the dense block by
`models.lines.features.dense_features` (models saved with an older feature set leave them out):

- where the speech starts: a title page has no cue → speech alternation after it, a file cut
  mid-scene has one within a few lines (`alternations_ahead`, `lines_to_alternation`,
  `lines_since_alternation`, `before_first_alternation`, `first_page_alternations`);
- brackets carried over a page break and nested (`paren_depth_carry`, the feature set 3 depth starts
  afresh on each page), how far the line sits from the line that opened the bracket
  (`paren_open_indent_diff`), speech after a closing bracket (`close_then_text`), a bracket left open
  (`opens_unclosed`), nesting (`nested_paren`);
- heading cues anywhere in a short upper-case line (`int_ext_anywhere`, `time_word_caps`,
  `lead_scene_number`, `heading_cues`);
- transitions in any case (`to_punct_end`: at most four words ending "to." / "to:";
  `transition_phrase`: a transition verb first);
- cue shape (`cue_shape`: upper-case, at most 4 words, speech right under it; `cue_column_dist`:
  how far from the column where this script's cue-shaped lines sit; `name_initial`: "ANNA K.").

Pure functions over arrays: no labels, no model.
"""

from __future__ import annotations

import re
from typing import Sequence

import numpy as np

READING_CUE_FEATURES = (
    "alternations_ahead", "lines_to_alternation", "lines_since_alternation", "before_first_alternation",
    "first_page_alternations", "paren_depth_carry", "paren_open_indent_diff", "close_then_text",
    "opens_unclosed", "nested_paren", "int_ext_anywhere", "time_word_caps", "lead_scene_number",
    "heading_cues", "to_punct_end", "transition_phrase", "cue_shape", "cue_column_dist", "name_initial",
)
AHEAD = 20  # lines a reader looks ahead for the speech to start
FAR = 60  # distances are capped here

_INT_EXT = re.compile(r"(?<![A-Za-z])(?:INT|EXT|I/E|E/I)(?:\.|\s*[-–/]|\s+(?=[A-Z]))")
_TIME_CAPS = re.compile(r"(?<![A-Za-z])(?:DAY|NIGHT|MORNING|EVENING|AFTERNOON|DUSK|DAWN|SUNSET|SUNRISE|CONTINUOUS"
                        r"|LATER|NOON|MIDNIGHT)(?![A-Za-z])")
_LEAD_SCENE = re.compile(r"^\W*\d{1,4}[A-Z]{0,2}[.)]?\s+\S")
_TO_END = re.compile(r"\bto\s*[.:]\s*$", re.I)
_TRANSITION_VERB = re.compile(r"^\W*(?:cut|fade|dissolve|smash|match|wipe|jump|flash|iris|intercut|hard|time|back|"
                              r"ripple|slow|quick)\b", re.I)
_EXTENSION = re.compile(r"\s*\(.*$")
_CUE_TOKEN = re.compile(r"^[A-Z][A-Z'.\-]*$|^[A-Z]\.$|^#?\d+$")
_INITIAL = re.compile(r"(?<![A-Za-z])[A-Z]\.(?:\s|$)")
_CLOSE_THEN_TEXT = re.compile(r"\)\s*[A-Za-z\"'“]")


def _is_caps(text: str) -> bool:
    return text.upper() == text and text.lower() != text


def cue_shaped(core: str) -> bool:
    """Upper-case, one to four name-like words once the extension is dropped ("ANNA K. (V.O.)")."""
    name = _EXTENSION.sub("", core).strip()
    tokens = name.split()
    if not 1 <= len(tokens) <= 4 or not _is_caps(name) or name.endswith(":"):
        return False
    if _INT_EXT.search(name) or _TO_END.search(name):
        return False
    return all(_CUE_TOKEN.match(t) for t in tokens)


def reading_cue_block(texts: Sequence[str], cores: Sequence[str], indent: np.ndarray, gap: np.ndarray,
                      page: np.ndarray, *, block_gap: float = 0.5) -> np.ndarray:
    """The READING_CUE_FEATURES of one script (rows in reading order); `cores` are the texts without
    margin marks, `indent` in character columns, `gap` blank lines before each line."""
    n = len(texts)
    out = np.full((n, len(READING_CUE_FEATURES)), np.nan, dtype=np.float32)
    if n == 0:
        return out
    f = {name: i for i, name in enumerate(READING_CUE_FEATURES)}
    texts = [str(t).strip() for t in texts]
    cores = [str(c).strip() for c in cores]
    gap = np.nan_to_num(np.asarray(gap, dtype=float), nan=0.0)
    indent = np.asarray(indent, dtype=float)
    page = np.asarray(page)

    cue = np.array([cue_shaped(c) for c in cores])
    caps = np.array([_is_caps(c) for c in cores])
    speech_next = np.zeros(n, dtype=bool)  # the line under it is speech-like: no blank line, not capitals
    speech_next[:-1] = (gap[1:] <= block_gap) & ~caps[1:] & np.array([bool(c) for c in cores[1:]])
    alternation = cue & speech_next
    _alternation_columns(out, f, alternation, page)
    _bracket_columns(out, f, texts, indent, gap, block_gap)
    _heading_columns(out, f, texts, cores, caps)
    out[:, f["to_punct_end"]] = [float(len(c.split()) <= 4 and bool(_TO_END.search(c))) for c in cores]
    out[:, f["transition_phrase"]] = [float(len(c.split()) <= 6 and bool(_TRANSITION_VERB.match(c))
                                            and bool(re.search(r"\b(?:to|in|out)\b", c, re.I))) for c in cores]
    out[:, f["cue_shape"]] = cue.astype(np.float32) + alternation  # 2: speech follows right under it
    column = float(np.median(indent[alternation])) if alternation.sum() >= 3 else np.nan
    out[:, f["cue_column_dist"]] = np.abs(indent - column)
    out[:, f["name_initial"]] = [float(cue[i] and bool(_INITIAL.search(c))) for i, c in enumerate(cores)]
    return out


def _alternation_columns(out: np.ndarray, f: dict[str, int], alternation: np.ndarray, page: np.ndarray) -> None:
    n = len(alternation)
    at = np.flatnonzero(alternation)
    idx = np.arange(n)
    cum = np.concatenate([[0], np.cumsum(alternation)])
    out[:, f["alternations_ahead"]] = cum[np.minimum(idx + AHEAD + 1, n)] - cum[idx]
    nxt = np.searchsorted(at, idx)  # first alternation at or after the line
    prev = np.searchsorted(at, idx, side="right") - 1  # last one at or before it
    ahead, since = np.full(n, FAR, dtype=float), np.full(n, FAR, dtype=float)
    has_next, has_prev = nxt < len(at), prev >= 0
    ahead[has_next] = at[nxt[has_next]] - idx[has_next]
    since[has_prev] = idx[has_prev] - at[prev[has_prev]]
    out[:, f["lines_to_alternation"]] = np.minimum(ahead, FAR)
    out[:, f["lines_since_alternation"]] = np.minimum(since, FAR)
    out[:, f["before_first_alternation"]] = (prev < 0).astype(np.float32)
    first_page = page == page[0]
    out[:, f["first_page_alternations"]] = np.log1p(alternation[first_page].sum())


def _bracket_columns(out: np.ndarray, f: dict[str, int], texts: list[str], indent: np.ndarray, gap: np.ndarray,
                     block_gap: float) -> None:
    """Open brackets carried over page breaks (a blank line, or eight lines without closing, end them)."""
    depth, run, opened_at = 0, 0, np.nan
    for i, text in enumerate(texts):
        if gap[i] > block_gap or run > 8:
            depth, run = 0, 0
        out[i, f["paren_depth_carry"]] = min(depth, 3)
        out[i, f["paren_open_indent_diff"]] = indent[i] - opened_at if depth > 0 else np.nan
        level, deepest = depth, depth
        for ch in text:
            if ch == "(":
                level += 1
                deepest = max(deepest, level)
            elif ch == ")":
                level = max(0, level - 1)
        out[i, f["nested_paren"]] = float(deepest >= 2)
        out[i, f["opens_unclosed"]] = float(level > depth)
        out[i, f["close_then_text"]] = float(bool(_CLOSE_THEN_TEXT.search(text)))
        if depth == 0 and level > 0:
            opened_at = indent[i]
        run = run + 1 if level > 0 else 0
        depth = level


def _heading_columns(out: np.ndarray, f: dict[str, int], texts: list[str], cores: list[str], caps: np.ndarray) -> None:
    """The scene number is read from the raw text: the core has it split off as a margin mark."""
    for i, core in enumerate(cores):
        short_caps = bool(caps[i]) and len(core.split()) <= 16
        int_ext = bool(_INT_EXT.search(core))
        time_word = bool(_TIME_CAPS.search(core))
        lead = bool(_LEAD_SCENE.match(texts[i]))
        out[i, f["int_ext_anywhere"]] = float(int_ext)
        out[i, f["time_word_caps"]] = float(time_word)
        out[i, f["lead_scene_number"]] = float(lead)
        out[i, f["heading_cues"]] = float(short_caps) * (int_ext + time_word + lead + short_caps)
