"""Render the sample screenplay `tim_time.fountain` as a born-digital PDF and as a fake scan.

Run from the repository root: `uv run python sample_scripts/make_pdfs.py`. It writes
`tim_time.pdf` (US Letter, Courier 12, standard screenplay layout, a text layer) and
`tim_time-scanned.pdf` (the same pages rasterized at 200 dpi, skewed, noisy, image only).
Both are committed; rerun this after editing the Fountain file. Output is deterministic: fixed
dates in the PDF metadata and a fixed random seed for the scan.
"""

from __future__ import annotations

import datetime as dt
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from fpdf import FPDF
from pdf2image import convert_from_path
from PIL import Image, ImageFilter

from labeling.ingest.formats.fountain import FountainLine, fountain_lines

HERE = Path(__file__).resolve().parent
SOURCE, PDF, SCANNED = HERE / "tim_time.fountain", HERE / "tim_time.pdf", HERE / "tim_time-scanned.pdf"

PT_PER_COL, PT_PER_ROW = 7.2, 12.0  # Courier 12: 10 characters per inch, 6 lines per inch
TOP_PT = 72.0  # the first body row starts one inch from the top
BODY_ROWS = 54  # rows 0..53: one-inch top and bottom margins on an 11-inch page
FIXED_DATE = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
SCAN_DPI, SCAN_SEED = 200, 20240101

# (column, wrap width) per element, columns from the page's left edge.
ACTION, DIALOGUE, PAREN, CUE = (15, 60), (25, 35), (31, 26), 37
# Dual dialogue: the first speech on the left, the `^` speech on the right.
DUAL = {
    False: {"cue": 22, "dialogue": (15, 28), "paren": (18, 24)},
    True: {"cue": 54, "dialogue": (47, 28), "paren": (50, 24)},
}
LEFT_NUMBER_END, RIGHT_NUMBER_COL, RIGHT_EDGE = 13, 77, 75


@dataclass
class Row:
    """One printed row: `(column, text)` pieces, and what it is for pagination."""

    kind: str
    pieces: list[tuple[float, str]]


@dataclass
class Block:
    """Rows that are laid out together: a heading, an action paragraph, a speech..."""

    kind: str
    rows: list[Row]
    gap: int
    cue: str = ""
    scene_number: str | None = None
    lines: list[FountainLine] = field(default_factory=list)  # a speech's lines, for dual layout


def wrap(text: str, width: int) -> list[str]:
    return textwrap.wrap(text, width, break_on_hyphens=False) or [text]


def right(text: str, end: int = RIGHT_EDGE) -> tuple[float, str]:
    return (end - len(text), text)


def heading_row(text: str, number: str | None, kind: str = "heading") -> Row:
    pieces = [(ACTION[0], text)]
    if number:
        pieces += [right(number, LEFT_NUMBER_END), (RIGHT_NUMBER_COL, number)]
    return Row(kind, pieces)


def speech_rows(lines: list[FountainLine], *, cue_col: int, dialogue, paren) -> list[Row]:
    rows = [Row("cue", [(cue_col, lines[0].text)])]
    for line in lines[1:]:
        col, width = paren if line.kind == "parenthetical" else dialogue
        kind = "paren" if line.kind == "parenthetical" else "dialogue"
        rows += [Row(kind, [(col, part)]) for part in wrap(line.text, width)]
    return rows


def build_blocks(elements: list[FountainLine]) -> list[Block]:
    """Group parsed lines into layout blocks (dual speeches side by side)."""
    blocks: list[Block] = []
    i = 0
    while i < len(elements):
        line = elements[i]
        gap = min(2, max(1, line.gap_before))
        if line.kind == "character":
            j = i + 1
            while j < len(elements) and elements[j].kind in ("dialogue", "parenthetical", "lyric"):
                j += 1
            speech = elements[i:j]
            if line.dual and blocks and blocks[-1].kind == "speech":
                left = blocks.pop()
                blocks.append(dual_block(left, speech))
            else:
                rows = speech_rows(speech, cue_col=CUE, dialogue=DIALOGUE, paren=PAREN)
                blocks.append(Block("speech", rows, gap, cue=line.text, lines=speech))
            i = j
            continue
        if line.kind == "heading":
            row = heading_row(line.text, line.scene_number)
            blocks.append(Block("heading", [row], 2, scene_number=line.scene_number))
        elif line.kind == "transition":
            piece = (ACTION[0], line.text) if line.text.startswith("FADE IN") else right(line.text)
            blocks.append(Block("transition", [Row("transition", [piece])], gap))
        elif line.kind == "centered":
            col = ACTION[0] + (ACTION[1] - len(line.text)) / 2
            blocks.append(Block("action", [Row("action", [(col, line.text)])], gap))
        else:
            rows = [Row("action", [(ACTION[0], part)]) for part in wrap(line.text, ACTION[1])]
            if line.gap_before == 0 and blocks and blocks[-1].kind == "action":
                blocks[-1].rows += rows  # the next line of the same paragraph
            else:
                blocks.append(Block("action", rows, gap))
        i += 1
    return blocks


def dual_block(left: Block, right_speech: list[FountainLine]) -> Block:
    sides = []
    for is_right, speech in ((False, left.lines), (True, right_speech)):
        spec = DUAL[is_right]
        sides.append(speech_rows(speech, cue_col=spec["cue"], dialogue=spec["dialogue"], paren=spec["paren"]))
    height = max(len(side) for side in sides)
    rows = []
    for n in range(height):
        pieces = [piece for side in sides if n < len(side) for piece in side[n].pieces]
        rows.append(Row("dual", pieces))
    return Block("dual", rows, left.gap)


def paginate(blocks: list[Block]) -> list[dict[int, Row]]:
    """Lay blocks onto pages of BODY_ROWS rows, with (MORE)/(CONT'D) and CONTINUED markers.

    Returns one dict per script page, body row number → Row; row -3 holds the page number and
    row BODY_ROWS + 1 the bottom "(CONTINUED)".
    """
    pages: list[dict[int, Row]] = [{}]
    # row: the next free body row; top: the first row for script text on this page.
    state = {"row": 0, "top": 0, "scene": None}

    def new_page(mid_scene: bool) -> None:
        if mid_scene:
            pages[-1][BODY_ROWS + 1] = Row("other", [right("(CONTINUED)")])
        pages.append({})
        state["row"] = state["top"] = 0
        if mid_scene:
            pages[-1][0] = heading_row("CONTINUED:", state["scene"], kind="other")
            state["row"] = state["top"] = 2

    def room(gap: int) -> int:
        return BODY_ROWS - state["row"] - (0 if state["row"] == state["top"] else gap)

    def place(rows: list[Row], gap: int) -> None:
        state["row"] += 0 if state["row"] == state["top"] else gap  # no blank rows at a page's top
        for row in rows:
            pages[-1][state["row"]] = row
            state["row"] += 1

    for n, block in enumerate(blocks):
        rows = block.rows
        if block.kind == "heading":
            state["scene"] = block.scene_number
            following = blocks[n + 1] if n + 1 < len(blocks) else None
            keep = (following.gap + min(2, len(following.rows))) if following else 0
            if room(block.gap) < len(rows) + keep:
                new_page(mid_scene=False)
            place(rows, block.gap)
            continue
        if room(block.gap) >= len(rows):
            place(rows, block.gap)
            continue
        split = best_split(block, room(block.gap))
        if split:
            head, tail = rows[:split], rows[split:]
            if block.kind == "speech":
                head = head + [Row("other", [(CUE, "(MORE)")])]
                cue = block.cue.replace(" (CONT'D)", "")
                tail = [Row("cue", [(CUE, f"{cue} (CONT'D)")])] + tail
            place(head, block.gap)
            new_page(mid_scene=state["scene"] is not None)
            place(tail, 0)
        else:
            new_page(mid_scene=state["scene"] is not None)
            place(rows, block.gap)
    for number, page in enumerate(pages, 1):
        if number > 1:
            page[-3] = Row("other", [right(f"{number}.")])
    return pages


def best_split(block: Block, room: int) -> int | None:
    """The largest row index to break a block at that leaves two rows on each side, or None."""
    rows = block.rows
    if block.kind == "action":
        candidates = range(2, len(rows) - 1)
        fits = [i for i in candidates if i <= room]
    elif block.kind == "speech":
        # Break only after a dialogue row, never right after the cue or a parenthetical.
        candidates = [i for i in range(3, len(rows) - 1) if rows[i - 1].kind == "dialogue"]
        fits = [i for i in candidates if i + 1 <= room]  # + the (MORE) row
    else:
        return None
    return max(fits) if fits else None


def render_pdf(title: list[FountainLine], pages: list[dict[int, Row]], path: Path) -> None:
    pdf = FPDF(unit="pt", format="letter")
    pdf.set_auto_page_break(False)
    pdf.set_creation_date(FIXED_DATE)
    pdf.set_title("Tim Time")
    pdf.set_creator("scriptlabel sample_scripts/make_pdfs.py")
    pdf.set_font("Courier", size=12)
    pdf.add_page()
    for row, (col, text) in title_page_pieces(title):
        put(pdf, row, col, text)
    for page in pages:
        pdf.add_page()
        for row_no, row in sorted(page.items()):
            for col, text in row.pieces:
                put(pdf, row_no, col, text)
    pdf.output(str(path))


def put(pdf: FPDF, row: int, col: float, text: str) -> None:
    # fpdf's text() takes the baseline; Courier's ascent is about 0.75 of the 12 pt row.
    pdf.text(col * PT_PER_COL, TOP_PT + row * PT_PER_ROW + 9.0, text)


def title_page_pieces(title: list[FountainLine]) -> list[tuple[int, tuple[float, str]]]:
    by_key: dict[str, list[str]] = {}
    for line in title:
        by_key.setdefault(line.title_key or "", []).append(line.text)
    pieces, row = [], 18
    for key, gap in (("title", 0), ("credit", 3), ("author", 1), ("authors", 1), ("source", 2)):
        row += gap if key in by_key else 0
        for text in by_key.get(key, []):
            for part in wrap(text.upper() if key == "title" else text, 50):
                pieces.append((row, ((85 - len(part)) / 2, part)))
                row += 1
    bottom = BODY_ROWS - 4
    for n, text in enumerate(by_key.get("contact", [])):
        pieces.append((bottom + n, (ACTION[0], text)))
    for n, text in enumerate(by_key.get("draft date", []) + by_key.get("date", [])):
        pieces.append((bottom + n, right(text)))
    return pieces


def render_scanned(
    pdf_path: Path, path: Path, *, dpi: int = SCAN_DPI, seed: int = SCAN_SEED, bilevel: bool = True
) -> int:
    """Rasterize `pdf_path` and make it look scanned; returns the page count.

    Each grey page gets a slight random skew (within 0.6 degrees), blur, sensor noise and dust
    specks. With `bilevel` (the default) it is then thresholded to 1 bit and stored CCITT G4, as
    a 200-dpi office scanner does: about 20 kB a page instead of 150 kB as grey JPEG.
    """
    rng = np.random.default_rng(seed)
    pages = []
    for image in convert_from_path(str(pdf_path), dpi=dpi, grayscale=True):
        image = image.rotate(rng.uniform(-0.6, 0.6), resample=Image.BICUBIC, fillcolor=255)
        pixels = np.asarray(image.filter(ImageFilter.GaussianBlur(radius=0.8)), dtype=np.float32)
        pixels += rng.normal(0.0, 12.0, pixels.shape)
        count = pixels.size // 15000
        ys = rng.integers(0, pixels.shape[0] - 1, count)
        xs = rng.integers(0, pixels.shape[1] - 1, count)
        pixels[ys, xs] = pixels[ys + 1, xs] = rng.uniform(0, 90, count)  # dust specks
        if bilevel:
            pages.append(
                Image.fromarray(np.where(pixels > 150, 255, 0).astype(np.uint8), mode="L").convert("1")
            )
        else:
            pages.append(Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), mode="L"))
    jpeg = {} if bilevel else {"quality": 40}  # Pillow refuses `quality` for G4 pages
    pages[0].save(
        path,
        "PDF",
        save_all=True,
        append_images=pages[1:],
        resolution=float(dpi),
        title="Tim Time (scanned)",
        **jpeg,
        creationDate=FIXED_DATE.utctimetuple(),  # Pillow wants a time.struct_time
        modDate=FIXED_DATE.utctimetuple(),
    )
    return len(pages)


def layout(source: Path = SOURCE) -> tuple[list[FountainLine], list[dict[int, Row]]]:
    """Parse the Fountain file and lay it out: (title-page lines, script pages)."""
    elements = fountain_lines(source.read_text(encoding="utf-8"), source=str(source))
    title = [e for e in elements if e.kind == "title"]
    return title, paginate(build_blocks([e for e in elements if e.kind != "title"]))


def main() -> None:
    title, pages = layout()
    render_pdf(title, pages, PDF)
    scanned = render_scanned(PDF, SCANNED)
    rows = sum(len(page) for page in pages)
    print(
        f"{PDF.name}: {len(pages) + 1} pages ({rows} printed rows); {SCANNED.name}: {scanned} pages, "
        f"{SCANNED.stat().st_size / 1e6:.1f} MB"
    )


if __name__ == "__main__":
    main()
