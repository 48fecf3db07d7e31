"""`project_fountain_labels` with the PDF's layout: labels the layout contradicts are corrected.

The scripts here are made up: a page of a screenplay in Final Draft's columns (action at 15, dialogue
at 25, parentheticals at 29, cues at 35, transitions ending at column 71) and a transcription of it
with the slips people make when they write Fountain from a PDF.
"""

import pandas as pd

from labeling.corpus.sources import project_fountain_labels
from labeling.ingest.pdf.layout import POINTS_PER_COLUMN as COLUMN_PT

ACTION, DIALOGUE, PAREN, CUE = 15.0, 25.0, 29.0, 35.0
RIGHT_EDGE = 71.0
WORDS = "apple river stone cloud maple orbit lantern velvet harbor canyon meadow pepper copper willow".split()


class Page:
    """PDF lines with their layout, and the Fountain source a careful transcriber would write."""

    def __init__(self):
        self.rows: list[dict] = []
        self.source: list[tuple[str, str | None]] = []
        self.page = 1
        self._n = 0

    def _text(self, words: int) -> str:
        self._n += 1
        return " ".join(f"{WORDS[(self._n + k) % len(WORDS)]}{self._n}" for k in range(words))

    def line(self, text: str, indent: float, *, gap: float = 0.0, right: float | None = None) -> None:
        x0 = indent * COLUMN_PT
        x1 = right * COLUMN_PT if right is not None else x0 + len(text) * COLUMN_PT
        self.rows.append(dict(text=text, indent=indent, gap_before=gap, page=self.page, x0=x0, x1=x1))

    def action(self, lines: int = 2) -> None:
        texts = [self._text(6) for _ in range(lines)]
        for k, text in enumerate(texts):
            self.line(text, ACTION, gap=1.0 if k == 0 else 0.0)
        self.source.append((" ".join(texts), "action"))

    def speech(self, name: str = "MARA", lines: int = 2) -> list[str]:
        self.line(name, CUE, gap=1.0)
        self.source.append((name, "character"))
        texts = [self._text(4) for _ in range(lines)]
        for text in texts:
            self.line(text, DIALOGUE)
        self.source.append((" ".join(texts), "dialogue"))
        return texts

    def transition(self, text: str = "CUT TO:") -> None:
        self.line(text, RIGHT_EDGE - len(text), gap=1.0, right=RIGHT_EDGE)
        self.source.append((text, "transition"))

    def layout(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows)

    def texts(self) -> list[str]:
        return [row["text"] for row in self.rows]


def a_script() -> Page:
    page = Page()
    for k in range(6):
        page.action()
        page.speech("MARA" if k % 2 else "TOM")
        page.transition("CUT TO:" if k % 2 else "DISSOLVE TO:")
    page.line("(quietly)", PAREN)
    page.source.append(("(quietly)", "parenthetical"))
    for _ in range(5):
        page.speech("TOM")
        page.line("(beat)", PAREN)
        page.source.append(("(beat)", "parenthetical"))
        text = page._text(3)
        page.line(text, DIALOGUE)
        page.source.append((text, "dialogue"))
    return page


def labels_of(page: Page, *, layout: bool = True):
    return project_fountain_labels(page.texts(), page.source, layout=page.layout() if layout else None)


def test_a_faithful_transcription_keeps_its_labels():
    page = a_script()
    projection = labels_of(page)
    assert projection.relabeled == {}
    assert list(projection.labels) == list(labels_of(page, layout=False).labels)


def test_a_speech_continued_after_a_page_break_is_dialogue_under_its_cont_d_cue():
    page = a_script()
    first = page.speech("MARA", lines=2)
    page.line("(MORE)", CUE)
    page.page = 2
    page.line("MARA (CONT'D)", CUE, gap=1.0)  # the transcriber dropped the cue...
    rest = [page._text(5) for _ in range(3)]
    for text in rest:
        page.line(text, DIALOGUE)
    page.source.append((" ".join(rest), "action"))  # ...so the rest of the speech reads as action
    page.action()
    projection = labels_of(page)
    labels = dict(zip(page.texts(), projection.labels))
    assert labels[first[0]] == "dialogue"
    assert labels["(MORE)"] == "other"
    assert labels["MARA (CONT'D)"] == "character"
    assert [labels[t] for t in rest] == ["dialogue"] * 3
    assert projection.relabeled == {("speech", "action", "dialogue"): 3, ("cue", "other", "character"): 1}
    assert labels_of(page, layout=False).labels[page.texts().index(rest[0])] == "action"


def test_shouted_lines_of_a_speech_are_not_cues():
    page = a_script()
    page.line("TOM", CUE, gap=1.0)
    page.source.append(("TOM", "character"))
    shouted = ["GET OUT OF MY HOUSE NOW", "AND TAKE YOUR DOG WITH YOU"]
    for text in shouted:
        page.line(text, DIALOGUE)
    # A transcription with a blank line before each upper-case line: Fountain reads each as a cue.
    page.source += [(shouted[0], "character"), (shouted[1], "character")]
    page.action()
    projection = labels_of(page)
    labels = dict(zip(page.texts(), projection.labels))
    # The first follows the cue with no blank line; the second continues the paragraph.
    assert [labels[t] for t in shouted] == ["dialogue", "dialogue"]


def test_a_parenthetical_wrapped_over_two_lines_is_parenthetical():
    page = a_script()
    page.line("TOM", CUE, gap=1.0)
    page.source.append(("TOM", "character"))
    page.line("(turning to the window,", PAREN)
    page.line("slowly)", PAREN + 1)
    spoken = page._text(4)
    page.line(spoken, DIALOGUE)
    page.source.append((f"(turning to the window, slowly) {spoken}", "dialogue"))  # run into the speech
    page.action()
    labels = dict(zip(page.texts(), labels_of(page).labels))
    assert labels["(turning to the window,"] == labels["slowly)"] == "parenthetical"
    assert labels[spoken] == "dialogue"


def test_a_right_aligned_phrase_over_two_lines_is_a_transition():
    page = a_script()
    page.line("WE MOVE INTO A", RIGHT_EDGE - 14, gap=1.0, right=RIGHT_EDGE)
    page.line("MONTAGE", RIGHT_EDGE - 7, right=RIGHT_EDGE)
    page.source += [("WE MOVE INTO A", "character"), ("MONTAGE", "dialogue")]  # Fountain's reading
    page.action()
    projection = labels_of(page)
    labels = dict(zip(page.texts(), projection.labels))
    assert labels["WE MOVE INTO A"] == labels["MONTAGE"] == "transition"
    assert projection.relabeled == {("right", "character", "transition"): 1, ("right", "dialogue", "transition"): 1}


def test_dual_dialogue_columns_are_left_alone():
    page = a_script()
    # Dual dialogue: the left speech sits at the action column with its cue at 27, the right one at 46/57.
    for text, indent, label in [("ANNA", 27.0, "character"), ("left speech words here", ACTION, "dialogue"),
                                ("BEN", 57.0, "character"), ("right speech words", 46.0, "dialogue")]:
        page.line(text, indent, gap=1.0 if label == "character" else 0.0)
        page.source.append((text, label))
    page.action()
    projection = labels_of(page)
    assert projection.relabeled == {}


def test_nothing_changes_where_classes_share_a_column():
    page = a_script()
    for row in page.rows:
        row["indent"] = ACTION  # a flush-left scrape: no layout to go by
        row["x0"] = ACTION * COLUMN_PT
    page.line("MARA (CONT'D)", ACTION, gap=1.0)
    text = page._text(4)
    page.line(text, ACTION)
    page.source.append((text, "action"))
    projection = labels_of(page)
    assert projection.relabeled == {}
    assert projection.labels[-1] == "action" and projection.labels[-2] == "other"
