"""Words → lines on one page: rows, splits, indents and the blank lines before each line."""

from labeling.ingest.pdf.layout import Word, assemble_lines

PITCH = 12.0  # 12-point Courier, single spaced
CHAR = 7.2


def words_at(row: int, column: int, text: str, *, dy: float = 0.0) -> list[Word]:
    out, x = [], column * CHAR
    for token in text.split():
        out.append(Word(x0=x, y0=72 + row * PITCH + dy, x1=x + len(token) * CHAR, y1=72 + row * PITCH + dy + 10, text=token))
        x += (len(token) + 1) * CHAR
    return out


def test_blank_lines_counted_in_line_steps():
    words = (words_at(0, 10, "INT. HOUSE - DAY") + words_at(2, 10, "She waits.") + words_at(3, 10, "And waits.")
             + words_at(5, 37, "ANNA") + words_at(6, 25, "Hello?"))
    lines = assemble_lines(words)
    assert [l.text for l in lines] == ["INT. HOUSE - DAY", "She waits.", "And waits.", "ANNA", "Hello?"]
    assert [l.gap_before for l in lines[1:]] == [1.0, 0.0, 1.0, 0.0]
    assert [round(l.indent) for l in lines] == [10, 10, 10, 37, 25]


def test_a_mark_just_off_the_baseline_does_not_shrink_the_line_step():
    # A revision mark a few points below a line's top used to be taken for the line pitch,
    # which multiplied every gap on the page (dialogue lines 5 "blank lines" apart).
    words = (words_at(0, 10, "INT. HOUSE - DAY") + words_at(2, 37, "ANNA") + words_at(3, 25, "Hello?")
             + words_at(3, 75, "*", dy=2.4) + words_at(4, 25, "Anyone home?") + words_at(6, 10, "Silence."))
    lines = [l for l in assemble_lines(words) if l.text != "*"]
    assert [l.text for l in lines] == ["INT. HOUSE - DAY", "ANNA", "Hello?", "Anyone home?", "Silence."]
    assert [l.gap_before for l in lines[1:]] == [1.0, 0.0, 0.0, 1.0]
