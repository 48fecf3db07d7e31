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


def test_dual_dialogue_is_read_column_by_column():
    # Two speakers side by side: read row by row, their speeches would interleave.
    words = (words_at(0, 10, "They argue.")
             + words_at(2, 18, "VON") + words_at(2, 48, "JOHNNY")
             + words_at(3, 10, "Fuck, we're fucked") + words_at(3, 40, "We're not fucked")
             + words_at(4, 10, "totally fucked") + words_at(4, 40, "Nothing happened,")
             + words_at(5, 40, "relax.")
             + words_at(7, 10, "Martha laughs."))
    lines = assemble_lines(words)
    assert [l.text for l in lines] == ["They argue.", "VON", "Fuck, we're fucked", "totally fucked", "JOHNNY",
                                       "We're not fucked", "Nothing happened,", "relax.", "Martha laughs."]
    # each column's cue has the blank line above the block before it; its speech follows without one
    gaps = {l.text: l.gap_before for l in lines}
    assert gaps["VON"] == gaps["JOHNNY"] == 1.0
    assert gaps["Fuck, we're fucked"] == gaps["We're not fucked"] == gaps["relax."] == 0.0
    assert gaps["Martha laughs."] == 1.0


def test_rows_with_a_margin_mark_or_a_right_aligned_transition_are_not_dual_dialogue():
    words = (words_at(0, 10, "He runs.") + words_at(0, 75, "*") + words_at(1, 10, "And runs.") + words_at(1, 75, "*")
             + words_at(3, 10, "The door slams.") + words_at(3, 60, "CUT TO:")
             + words_at(5, 10, "INT. HALL - DAY"))
    lines = assemble_lines(words)
    assert [l.text for l in lines] == ["He runs.", "*", "And runs.", "*", "The door slams.", "CUT TO:",
                                       "INT. HALL - DAY"]


def test_an_episode_scene_number_in_both_margins_stays_with_its_heading():
    # "2.14" (episode 2, scene 14) in both margins: part of the heading's line, as "12" or "12A" are.
    words = words_at(0, 5, "2.14") + words_at(0, 13, "INT. HOUSE - HALLWAY - LATER") + words_at(0, 67, "2.14")
    assert [l.text for l in assemble_lines(words)] == ["2.14 INT. HOUSE - HALLWAY - LATER 2.14"]


def test_a_row_in_the_top_margin_is_one_running_header():
    # 'TITLE "EPISODE"   ...   DRAFT (date) 4.' at half an inch from the top: read as two columns, the title
    # half was a line of its own that the model called action on every page.
    header = words_at(-3, 8, 'LIGHTHOUSE 101 "THE KEEPER"') + words_at(-3, 49, "BLUE DRAFT (2/15/13) 4.")
    words = (header + words_at(0, 15, "Rain hammers the glass.")
             + words_at(2, 22, "MARA") + words_at(2, 52, "OTTO")  # dual dialogue below the margin stays two columns
             + words_at(3, 15, "Anyone up here?") + words_at(3, 45, "Only the gulls."))
    lines = assemble_lines(words)
    assert [l.text for l in lines] == ['LIGHTHOUSE 101 "THE KEEPER" BLUE DRAFT (2/15/13) 4.', "Rain hammers the glass.",
                                       "MARA", "Anyone up here?", "OTTO", "Only the gulls."]
    assert round(lines[0].indent) == 8 and lines[0].y1 < 54
