"""Final Draft XML (`.fdx`): paragraphs with an explicit `Type` become labeled lines.

Only the script body (`FinalDraft/Content`) and the title page (`FinalDraft/TitlePage/Content`,
read first, as `other`) are script text; headers, footers, notes and settings are not. A paragraph
gives one `Line` per explicit line break in its text (Final Draft wraps the rest itself), with the
same column conventions as the Fountain reader. `page` is 1 + the paragraphs marked
`StartsNewPage` before, and `source_line_no` stays empty (DESIGN.md: TXT and Fountain only).
The XML is parsed with defusedxml, so entity-expansion bombs and external entities are refused.
"""

from __future__ import annotations

from pathlib import Path
from xml.etree.ElementTree import Element, ParseError

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from labeling.ingest.formats.fountain import ACTION_COL, CHARACTER_COL, DIALOGUE_COL, PAREN_COL, RIGHT_EDGE_COL
from store.types import Line, ScriptlabelError

# Final Draft paragraph types → our labels. Unknown types (custom elements) are `other`.
FDX_TYPE_LABELS: dict[str, str] = {
    "Scene Heading": "scene_heading",
    "Action": "action",
    "General": "action",
    "Shot": "action",
    "Character": "character",
    "Dialogue": "dialogue",
    "Lyrics": "dialogue",
    "Parenthetical": "parenthetical",
    "Transition": "transition",
    "Cast List": "other",
    "New Act": "other",
    "End of Act": "other",
    "Title": "other",
}
_COLUMNS = {"character": CHARACTER_COL, "dialogue": DIALOGUE_COL, "parenthetical": PAREN_COL}
# Blank lines Final Draft's default template puts before each element.
_GAP_BEFORE = {"dialogue": 0, "parenthetical": 0}


class FdxFormatError(ScriptlabelError):
    pass


def read_fdx_file(path: str | Path) -> list[Line]:
    """Read and parse a `.fdx` file; errors name the file."""
    path = Path(path)
    return parse_fdx(path.read_bytes(), source=str(path))


def parse_fdx(data: bytes | str, *, source: str = "FDX input") -> list[Line]:
    """Parse Final Draft XML into stored lines, each with its `imported_label`.

    Raises:
        FdxFormatError: the XML is malformed, unsafe, not a Final Draft document, or has no text.
    """
    if not data or not data.strip():
        raise FdxFormatError(f"{source}: the FDX file is empty; nothing to ingest")
    try:
        root = SafeET.fromstring(data, forbid_dtd=True)
    except ParseError as exc:
        raise FdxFormatError(
            f"{source}: not valid Final Draft XML ({exc}); re-save it from Final Draft, "
            "or export it as PDF and ingest the PDF"
        ) from None
    except DefusedXmlException as exc:
        raise FdxFormatError(
            f"{source}: the XML declares a DTD or entities ({type(exc).__name__}), which Final Draft "
            "files never do; refusing it for safety. Re-save it from Final Draft"
        ) from None
    if root.tag != "FinalDraft":
        raise FdxFormatError(
            f"{source}: the XML is not a Final Draft script (root element <{root.tag}>, "
            "expected <FinalDraft>); export the script from Final Draft as .fdx"
        )
    reader = _Reader()
    try:
        title_content = root.find("TitlePage/Content")
        if title_content is not None:
            for paragraph in title_content.iter("Paragraph"):
                reader.paragraph(paragraph, "other", title_page=True)
        body = root.find("Content")
        if body is not None:
            reader.walk(body)
    except RecursionError:
        raise FdxFormatError(
            f"{source}: the XML is nested thousands of levels deep, which no Final Draft script is; "
            "re-save it from Final Draft, or export it as PDF and ingest the PDF"
        ) from None
    if not reader.lines:
        raise FdxFormatError(f"{source}: the FDX file has no script paragraphs with text; nothing to ingest")
    return reader.lines


class _Reader:
    def __init__(self) -> None:
        self.lines: list[Line] = []
        self.page = 1
        self.row: int | None = None  # None: the next line is the first of its page

    def walk(self, parent: Element) -> None:
        # Dual dialogue nests its paragraphs: <Paragraph><DualDialogue><Paragraph Type=...>...
        for child in parent:
            if child.tag == "Paragraph":
                kind = child.get("Type")
                if kind is not None:
                    self.paragraph(child, FDX_TYPE_LABELS.get(kind, "other"))
                self.walk(child)
            elif child.tag == "DualDialogue":
                self.walk(child)

    def paragraph(self, paragraph: Element, label: str, *, title_page: bool = False) -> None:
        text = "".join("".join(run.itertext()) for run in paragraph.findall("Text"))
        parts = [part.strip() for part in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
        parts = [part for part in parts if part]
        if not parts:
            return
        if paragraph.get("StartsNewPage") == "Yes" and self.lines and not title_page:
            self.page, self.row = self.page + 1, None
        centered = paragraph.get("Alignment") == "Center"
        for n, part in enumerate(parts):
            gap = 0 if n or not self.lines else _GAP_BEFORE.get(label, 1)
            x0 = float(_column(label, part, centered=centered))
            self.row = gap if self.row is None else self.row + 1 + gap
            self.lines.append(
                Line(
                    line_no=len(self.lines) + 1,
                    page=self.page,
                    text=part,
                    x0=x0,
                    y0=float(self.row),
                    x1=x0 + len(part),
                    y1=float(self.row + 1),
                    indent=x0,
                    gap_before=float(gap),
                    imported_label=label,
                )
            )


def _column(label: str, text: str, *, centered: bool) -> int:
    if centered:
        return ACTION_COL + max(0, (RIGHT_EDGE_COL - ACTION_COL - len(text)) // 2)
    if label == "transition":
        return max(ACTION_COL, RIGHT_EDGE_COL - len(text))
    return _COLUMNS.get(label, ACTION_COL)
