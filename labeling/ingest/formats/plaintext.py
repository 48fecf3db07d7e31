"""Plain-text screenplays (IMSDb style): indentation by spaces, form feeds, HTML pages saved as text.

One stored line per non-blank source line; `indent` is the count of leading spaces (tabs expanded),
`gap_before` the number of blank lines before it, `page` advances at each form feed. A line's text is
stored as written (`<script>` and `&amp;` included: the pages escape it where it is shown); only a file
that is an HTML page (IMSDb's `<html>`/`<pre>` around the script) has its tags and entities read as a
browser would show them.
"""

from __future__ import annotations

import codecs
import functools
import html
import re
from pathlib import Path

from store.types import Line, ScriptlabelError

# IMSDb pages carry <b>, </b>, <pre>, <html>... tags around screenplay text.
_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9]*(?:\s[^<>]*)?/?>")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")
_HTML_PAGE = re.compile(r"\A\s*(?:<!doctype\s+html|<html[\s>])|<pre(?:\s[^<>]*)?>", re.IGNORECASE)


def is_html_page(text: str) -> bool:
    """An HTML document (starts as one, or holds a <pre> block), not a screenplay that mentions a tag."""
    return _HTML_PAGE.search(text[:200_000]) is not None


class TextDecodeError(ScriptlabelError):
    pass


def decode_text(data: bytes, *, source: str = "file") -> str:
    """Decode screenplay bytes: BOM-marked UTF-8/16/32, else UTF-8, else cp1252/latin-1.

    Raises TextDecodeError for content that is not text (binary garbage), saying which file.
    """
    if not data.strip():
        raise TextDecodeError(f"{source}: the file is empty; nothing to ingest")
    for bom, encoding in (
        (codecs.BOM_UTF32_LE, "utf-32"),
        (codecs.BOM_UTF32_BE, "utf-32"),
        (codecs.BOM_UTF8, "utf-8-sig"),
        (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"),
    ):
        if data.startswith(bom):
            text = data.decode(encoding, errors="replace")
            break
    else:
        text = _decode_without_bom(data)
    printable = sum(ch.isprintable() or ch in "\n\r\t\f" for ch in text)
    if text and printable / len(text) < 0.95 or "\x00" in text:
        raise TextDecodeError(
            f"{source}: this does not look like a text screenplay (binary content); "
            "ingest the PDF, Fountain or FDX file instead"
        )
    if not text.strip():
        raise TextDecodeError(f"{source}: the file has no text; nothing to ingest")
    return text


def _decode_without_bom(data: bytes) -> str:
    # UTF-16 without a BOM: every other byte NUL in mostly-ASCII text.
    if len(data) >= 4:
        even_nul = data[0::2].count(0) / max(1, len(data[0::2]))
        odd_nul = data[1::2].count(0) / max(1, len(data[1::2]))
        if odd_nul > 0.4 and even_nul < 0.05:
            return data.decode("utf-16-le", errors="replace")
        if even_nul > 0.4 and odd_nul < 0.05:
            return data.decode("utf-16-be", errors="replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def read_text_file(path: str | Path) -> str:
    path = Path(path)
    return decode_text(path.read_bytes(), source=str(path))


def clean_source_line(raw: str, *, markup: bool = False) -> str:
    """Drop control characters, expand tabs, keep leading spaces; with `markup` (an HTML page) also read
    tags and entities as a browser shows them."""
    line = raw
    if markup:
        line = _TAG.sub("", line)
        if "&" in line:
            line = html.unescape(line)
    line = _CONTROL.sub("", line).replace("\u00a0", " ")
    return line.expandtabs(8).rstrip()


def parse_plaintext(text: str, *, markup: bool | None = None) -> list[Line]:
    """Split a text screenplay into stored lines (blank lines are not stored).

    `markup`: read HTML tags and entities (True), keep every character as written (False), or decide by
    whether the file is an HTML page (None, `is_html_page`).
    """
    if markup is None:
        markup = is_html_page(text)
    clean = functools.partial(clean_source_line, markup=markup)
    lines: list[Line] = []
    page, row, gap = 1, 0, 0
    for source_no, raw in enumerate(text.replace("\r\n", "\n").replace("\r", "\n").split("\n"), 1):
        while "\f" in raw:
            before, raw = raw.split("\f", 1)
            if clean(before).strip():
                lines.append(_make_line(len(lines) + 1, page, row, gap, source_no, clean(before)))
                gap = 0
            page, row = page + 1, 0
        cleaned = clean(raw)
        if not cleaned.strip():
            gap += 1
            row += 1
            continue
        lines.append(_make_line(len(lines) + 1, page, row, gap, source_no, cleaned))
        gap = 0
        row += 1
    return lines


def _make_line(line_no: int, page: int, row: int, gap: int, source_no: int, cleaned: str) -> Line:
    indent = len(cleaned) - len(cleaned.lstrip(" "))
    text = cleaned.strip()
    return Line(
        line_no=line_no,
        page=page,
        text=text,
        x0=float(indent),
        y0=float(row),
        x1=float(indent + len(text)),
        y1=float(row + 1),
        indent=float(indent),
        gap_before=float(gap),
        source_line_no=source_no,
    )
