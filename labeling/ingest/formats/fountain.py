"""Fountain screenplays (fountain.io, spec 1.1): read them as labeled lines, and write them back.

We parse Fountain ourselves: the PyPI parsers we tried (screenplain 0.12, jouvence 0.4) give no
source line numbers, and jouvence mis-reads dual dialogue, sections and boneyard on the development
samples. Deliberate choices, all following DESIGN.md's label conventions:

- One `Line` per non-blank source line (no word wrapping); a three-line dialogue gives three Lines.
- Text is what a reader sees: Fountain syntax (`! @ . > < ~ ^`, emphasis `* _`, scene numbers
  `#12#`, title-page keys) is removed, the words kept.
- Notes `[[...]]`, boneyard `/* */`, sections `#` and synopses `=` are not script lines; a lone
  `[[other: TEXT]]` note (what `write_fountain` writes for `other` lines) is read back as `other`.
- `FADE IN:`, `FADE OUT.`, `INTERCUT:` and the like count as transitions, not action as in the spec.
- Centered text `>...<` is action; lyrics `~` are dialogue; title-page values are `other`.
- `indent` is the element's column on a standard page at 10 cpi (heading/action 15, dialogue 25,
  parenthetical 31, character 37, transitions end at 75); `page` is 1 + the `===` breaks before.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from labeling.ingest.formats.plaintext import decode_text
from store.types import Line, LineLabel, ScriptlabelError

# Standard screenplay columns, counted from the page's left edge at 10 characters per inch.
ACTION_COL, DIALOGUE_COL, PAREN_COL, CHARACTER_COL, RIGHT_EDGE_COL, PAGE_COLS = 15, 25, 31, 37, 75, 85

# Fountain's own syntax (its spec's list, at the very start of the line; scene numbers go at the end as #12#),
# not store.rules.HEADING, which reads printed scripts (scene numbers in front, EXT/INT too).
_HEADING = re.compile(r"^(?:INT|EXT|EST|INT\.?/EXT|I/E)[.\s]", re.IGNORECASE)
_SCENE_NUMBER = re.compile(r"\s*#([\w.\-]+)#\s*$")
_PAGE_BREAK = re.compile(r"^={3,}\s*$")
_EXTRA_TRANSITION = re.compile(
    r"^(?:FADE (?:IN|OUT|TO BLACK)|(?:SMASH )?CUT TO BLACK|INTERCUT(?: WITH)?)\s*[:.]?$"
)
_EXTENSIONS = re.compile(r"(?:\s*\([^()]*\))+\s*$")
_TITLE_KEY = re.compile(r"^([A-Za-z][A-Za-z0-9 _-]*?)\s*:\s*(.*)$")
_KNOWN_TITLE_KEYS = {
    "TITLE",
    "CREDIT",
    "AUTHOR",
    "AUTHORS",
    "SOURCE",
    "DRAFT DATE",
    "DATE",
    "CONTACT",
    "NOTES",
    "COPYRIGHT",
    "REVISION",
    "FORMAT",
}
_CENTERED_TITLE_KEYS = {"title", "credit", "author", "authors", "source"}
_OTHER_NOTE = re.compile(r"^\s*\[\[other:\s?(.*?)\]\]\s*$")
_BONEYARD = re.compile(r"/\*.*?\*/", re.DOTALL)
_NOTE = re.compile(r"[ \t]*\[\[.*?\]\]", re.DOTALL)
_STARS = re.compile(r"(?<![\w*])(\*{1,3})(?=\S)(.+?)(?<=\S)\1(?![\w*])")
_UNDERLINE = re.compile(r"(?<![\w_])_(?=\S)(.+?)(?<=\S)_(?!\w)")


class FountainError(ScriptlabelError):
    pass


@dataclass(frozen=True)
class FountainLine:
    """One non-blank line of a Fountain script with its element kind.

    `kind` is finer than `label`: title, heading, action, centered, character, dialogue, lyric,
    parenthetical, transition, other. `dual` marks the `^` cue of dual dialogue (and its lines).
    """

    text: str
    label: str
    kind: str
    source_line_no: int
    page: int
    gap_before: int
    scene_number: str | None = None
    dual: bool = False
    title_key: str | None = None


def read_fountain_file(path: str | Path) -> list[Line]:
    """Read and parse a `.fountain` file; errors name the file."""
    path = Path(path)
    return parse_fountain(decode_text(path.read_bytes(), source=str(path)), source=str(path))


def parse_fountain(text: str, *, source: str = "Fountain text") -> list[Line]:
    """Parse Fountain text into stored lines, each with its `imported_label`.

    Raises:
        FountainError: the text has no script lines at all.
    """
    lines: list[Line] = []
    row, page = 0, 0
    for element in fountain_lines(text, source=source):
        row = element.gap_before if element.page != page else row + 1 + element.gap_before
        page = element.page
        x0 = float(_column(element))
        lines.append(
            Line(
                line_no=len(lines) + 1,
                page=element.page,
                text=element.text,
                x0=x0,
                y0=float(row),
                x1=x0 + len(element.text),
                y1=float(row + 1),
                indent=x0,
                gap_before=float(element.gap_before),
                source_line_no=element.source_line_no,
                imported_label=element.label,
            )
        )
    return lines


def fountain_lines(text: str, *, source: str = "Fountain text") -> list[FountainLine]:
    """Parse Fountain text into `FountainLine`s in reading order (what renderers need).

    Raises:
        FountainError: the text has no script lines at all.
    """
    if not text or not text.strip():
        raise FountainError(f"{source}: the Fountain text is empty; nothing to ingest")
    parser = _Parser(text.replace("\r\n", "\n").replace("\r", "\n").lstrip("\ufeff").split("\n"))
    result = parser.run()
    if not result:
        raise FountainError(
            f"{source}: no script lines found (only notes, sections or boneyard); "
            "check that this is a Fountain screenplay"
        )
    return result


def _column(element: FountainLine) -> int:
    width = len(element.text)
    if element.kind == "title":
        return max(0, (PAGE_COLS - width) // 2) if element.title_key in _CENTERED_TITLE_KEYS else ACTION_COL
    if element.kind == "centered":
        return ACTION_COL + max(0, (RIGHT_EDGE_COL - ACTION_COL - width) // 2)
    if element.kind == "transition":
        return max(ACTION_COL, RIGHT_EDGE_COL - width)
    return {
        "character": CHARACTER_COL,
        "dialogue": DIALOGUE_COL,
        "lyric": DIALOGUE_COL,
        "parenthetical": PAREN_COL,
    }.get(element.kind, ACTION_COL)


def strip_emphasis(text: str) -> str:
    """Remove Fountain emphasis markers (`*italic*`, `**bold**`, `_underline_`) and `\\` escapes."""
    text = text.replace("\\*", "\x01").replace("\\_", "\x02")
    for _ in range(3):  # nested emphasis such as _**BOLD UNDERLINED**_
        stripped = _UNDERLINE.sub(r"\1", _STARS.sub(r"\2", text))
        if stripped == text:
            break
        text = stripped
    return text.replace("\x01", "*").replace("\x02", "_").strip()


def is_scene_heading(text: str) -> bool:
    """True if `text` starts like an INT./EXT./EST./I/E scene heading."""
    return bool(_HEADING.match(text))


def is_transition(text: str) -> bool:
    """True for an upper-case transition: `... TO:`, `FADE IN:`, `FADE OUT.`, `INTERCUT:`..."""
    return _is_upper(text) and (text.endswith("TO:") or bool(_EXTRA_TRANSITION.match(text)))


def is_character_cue(text: str) -> bool:
    """True if `text` would be read as a speaker cue when dialogue follows it.

    The name must be upper case; extensions such as `(V.O.)` or `(cont'd)` may follow it.
    """
    name = _EXTENSIONS.sub("", text.rstrip().removesuffix("^"))
    return _is_upper(name) and "(" not in name and not is_scene_heading(text) and not is_transition(text)


def _is_upper(text: str) -> bool:
    return any(ch.isalpha() for ch in text) and text == text.upper()


# Line states after notes and boneyard are masked out.
_BLANK, _SOFT, _REMOVED, _OTHER, _CONTENT = range(5)


class _Parser:
    """Two passes: mask notes/boneyard keeping line numbers, then read paragraphs in order."""

    def __init__(self, raw: list[str]) -> None:
        self.raw = raw
        self.out: list[FountainLine] = []
        self.page = 1
        self.gap = 0  # blank lines since the last emitted line

    def run(self) -> list[FountainLine]:
        other_notes = {i: m.group(1) for i, line in enumerate(self.raw) if (m := _OTHER_NOTE.match(line))}
        text, touched = _mask("\n".join(self.raw))
        masked = text.split("\n")
        states = []
        for i, (raw, line) in enumerate(zip(self.raw, masked)):
            if i in other_notes:
                states.append(_OTHER)
            elif line.strip():
                states.append(_CONTENT)
            elif raw.strip() or i in touched:
                states.append(_REMOVED)
            else:
                # Two spaces on an otherwise empty line keep a dialogue block together (spec 1.1).
                states.append(_SOFT if raw.startswith("  ") else _BLANK)
        start = self._title_page(masked, states)
        paragraph: list[tuple[int, str, int]] = []  # (index, text or note, state)
        for i in range(start, len(masked)):
            state = states[i]
            if state in (_CONTENT, _OTHER):
                paragraph.append((i, masked[i].strip() if state == _CONTENT else other_notes[i], state))
            elif state == _REMOVED:
                continue
            elif state == _SOFT and paragraph and self._soft_continues(paragraph, states, i):
                paragraph.append((i, "", _SOFT))
            else:
                self._paragraph(paragraph)
                paragraph = []
                self.gap += 1
        self._paragraph(paragraph)
        return self.out

    def _soft_continues(self, paragraph: list[tuple[int, str, int]], states: list[int], i: int) -> bool:
        first = next((text for _, text, state in paragraph if state == _CONTENT), "")
        following = next((s for s in states[i + 1 :] if s != _REMOVED), _BLANK)
        return following == _CONTENT and (first.startswith("@") or is_character_cue(strip_emphasis(first)))

    def _title_page(self, masked: list[str], states: list[int]) -> int:
        first = next((i for i, s in enumerate(states) if s != _BLANK), None)
        if first is None or not (m := _TITLE_KEY.match(masked[first].strip())):
            return 0
        key = m.group(1).strip()
        if key.upper() not in _KNOWN_TITLE_KEYS and (key == key.upper() or len(key.split()) > 2):
            return 0  # `FADE IN:` or a sentence with a colon on line 1 is script, not a title page
        self.gap = first
        i = first
        while i < len(masked) and states[i] not in (_BLANK, _SOFT):
            line = masked[i]
            if states[i] == _CONTENT:
                m = _TITLE_KEY.match(line.strip())
                if m and (i == first or not line[:1].isspace()):  # indented lines continue a value
                    key, value = m.group(1).strip().lower(), m.group(2)
                else:
                    value = line
                if value.strip():
                    self._emit(i, strip_emphasis(value), "title", title_key=key)
            i += 1
        return i

    def _emit(self, i: int, text: str, kind: str, **extra) -> None:
        if not text:
            return
        label = {
            "title": "other",
            "heading": "scene_heading",
            "centered": "action",
            "lyric": "dialogue",
        }.get(kind, kind)
        self.out.append(FountainLine(text, LineLabel(label).value, kind, i + 1, self.page, self.gap, **extra))
        self.gap = 0

    def _paragraph(self, items: list[tuple[int, str, int]]) -> None:
        pos = 0
        while pos < len(items):
            i, line, state = items[pos]
            if state == _OTHER:
                self._emit(i, line, "other")
                pos += 1
                continue
            content_after = any(s == _CONTENT for _, _, s in items[pos + 1 :])
            plain = strip_emphasis(line)
            if _PAGE_BREAK.match(line):
                self.page, self.gap = self.page + 1, 0  # a new page's first gap counts from its top
            elif line.startswith("#") or (line.startswith("=") and not line.startswith("==")):
                pass  # sections and synopses are outline, not script
            elif (line.startswith(".") and not line.startswith("..")) or (
                is_scene_heading(plain) and (not content_after or plain == plain.upper())
            ):
                self._heading(i, line)
            elif line.startswith(">") and not line.rstrip().endswith("<"):
                self._emit(i, strip_emphasis(line[1:]), "transition")
            elif is_transition(plain) and not line.startswith(("!", "@")):
                self._emit(i, plain, "transition")
            elif line.startswith("@") or (content_after and is_character_cue(plain) and line[0] not in "!~>"):
                self._dialogue(items[pos:])
                return
            else:
                self._action(items[pos:])
                return
            pos += 1

    def _heading(self, i: int, line: str) -> None:
        text = line.removeprefix(".")
        number = None
        if m := _SCENE_NUMBER.search(text):
            number, text = m.group(1), text[: m.start()]
        self._emit(i, strip_emphasis(text), "heading", scene_number=number)

    def _dialogue(self, items: list[tuple[int, str, int]]) -> None:
        i, cue, _ = items[0]
        cue = cue.removeprefix("@").rstrip()
        dual = cue.endswith("^")
        self._emit(i, strip_emphasis(cue.removesuffix("^").rstrip()), "character", dual=dual)
        in_paren = False
        for i, line, state in items[1:]:
            if state == _SOFT:
                self.gap += 1
                continue
            if state == _OTHER:
                self._emit(i, line, "other")
                continue
            if in_paren or (line.startswith("(") and (line.endswith(")") or ")" not in line)):
                kind = "parenthetical"
                in_paren = not line.endswith(")")
            elif line.startswith("~"):
                kind, line = "lyric", line[1:]
            else:
                kind = "dialogue"
            self._emit(i, strip_emphasis(line), kind, dual=dual)

    def _action(self, items: list[tuple[int, str, int]]) -> None:
        for i, line, state in items:
            if state == _OTHER:
                self._emit(i, line, "other")
            elif state == _SOFT:
                self.gap += 1
            elif line.startswith("~"):
                self._emit(i, strip_emphasis(line[1:]), "lyric")
            elif line.startswith(">") and line.endswith("<"):
                self._emit(i, strip_emphasis(line[1:-1]), "centered")
            else:
                self._emit(i, strip_emphasis(line.removeprefix("!")), "action")


def _mask(text: str) -> tuple[str, set[int]]:
    """Blank out boneyard and notes, keeping every newline so line numbers stay right.

    Returns the masked text and the 0-based indices of lines a note or boneyard touched. Only
    closed pairs are removed: an unclosed `/*` must not swallow the rest of the script.
    """
    touched: set[int] = set()

    def blank(match: re.Match) -> str:
        first = match.string.count("\n", 0, match.start())
        touched.update(range(first, first + match.group(0).count("\n") + 1))
        return "\n" * match.group(0).count("\n")

    text = _BONEYARD.sub(blank, text)
    return _NOTE.sub(blank, text), touched


def write_fountain(rows: Iterable[tuple], *, title: str | None = None) -> str:
    """Write labeled lines, in reading order, as a Fountain document.

    Elements are forced (`!`, `@`, `.`, `>`) where the text alone would read as something else.
    `other` lines (page numbers, CONTINUED, title matter) are kept as lone `[[other: TEXT]]`
    notes, which Fountain apps hide and `parse_fountain` reads back as `other`. Known limits: a
    dialogue line with no cue before it is written as a lyric (`~`, still dialogue); a
    parenthetical not in parentheses reads back as dialogue, a dialogue line wholly in
    parentheses as a parenthetical.

    Args:
        rows: `(text, label)` or `(text, label, gap_before)` in reading order; labels are
            `LineLabel`s or their names. With `gap_before`, consecutive action lines with a gap
            start a new paragraph; without it they stay one paragraph, line by line.
        title: if given, a title page with this title is written first (it reads back as `other`).
    """
    rows = [_normalize_row(row) for row in rows]
    rows = [row for row in rows if row[0]]
    paragraphs: list[list[str]] = [[f"Title: {_escape(title)}"]] if title else []
    current: list[str] = []
    kind = None  # "action" or "dialogue" while a paragraph is open
    for n, (text, label, gap) in enumerate(rows):
        escaped = _escape(text)
        following = next((row[1] for row in rows[n + 1 :] if row[1] != "other"), None)
        if label == "other":
            note = f"[[other: {text.replace(']]', '] ]')}]]"
            if kind == "dialogue" and following in ("dialogue", "parenthetical"):
                current.append(note)  # inside the block, so the speech after it keeps its cue
            else:
                if current:
                    paragraphs.append(current)
                current, kind = [], None
                paragraphs.append([note])
            continue
        if label in ("dialogue", "parenthetical") and kind == "dialogue":
            current.append(escaped)
            continue
        if label == "action" and kind == "action" and not gap:
            current.append(_action_line(escaped, first=False))
            continue
        if current:
            paragraphs.append(current)
        current, kind = [], None
        if label == "scene_heading":
            plain_ok = is_scene_heading(text) and text == text.upper() and not _SCENE_NUMBER.search(text)
            paragraphs.append([escaped if plain_ok else "." + escaped])
        elif label == "transition":
            paragraphs.append([escaped if is_transition(text) else "> " + escaped])
        elif label == "character":
            speech_follows = following in ("dialogue", "parenthetical")
            cue = escaped if is_character_cue(text) and speech_follows else "@" + escaped
            current, kind = [cue], "dialogue"
        elif label == "action":
            current, kind = [_action_line(escaped, first=True)], "action"
        else:  # dialogue or parenthetical with no cue before it
            paragraphs.append(["~" + escaped])
    if current:
        paragraphs.append(current)
    return "\n\n".join("\n".join(p) for p in paragraphs) + "\n"


def _normalize_row(row: tuple) -> tuple[str, str, float]:
    text, label, *rest = row
    return (
        str(text).strip(),
        LineLabel.parse(str(getattr(label, "value", label))).value,
        rest[0] if rest else 0,
    )


def _escape(text: str) -> str:
    return text.replace("*", "\\*").replace("_", "\\_")


def _action_line(text: str, *, first: bool) -> str:
    needs_force = text.startswith(("!", "~", "[[", "/*")) or (text.startswith(">") and text.endswith("<"))
    if first:
        needs_force = needs_force or text.startswith((".", "@", ">", "#", "=")) or is_scene_heading(text)
        # Upper-case text or a cue-like line could read as a cue, a transition or a heading.
        needs_force = needs_force or _is_upper(text) or is_character_cue(text)
    return "!" + text if needs_force else text
