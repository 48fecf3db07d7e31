"""TRIPOD's turning points (Papalampidi, Keller & Lapata, EMNLP 2019) as sequence ratings.

TRIPOD annotates five turning points (opportunity, change of plans, point of no return, major
setback, climax) on the sentences of each training movie's Wikipedia synopsis
(`TRIPOD_synopses_train.csv`: `synopsis_segmented` with `[STR_SENT] ... [END_SENT]` around each
sentence, `tp1`..`tp5` the 0-based sentence of each turning point; `movie_name` is
`<movie>_<annotator>`, some movies have several annotators). For training, the paper projects them
onto the screenplay's scenes: the scenes most similar to the turning point's synopsis sentence. Here
that similarity is tf-idf cosine over the scene's text (descriptions, dialogue and character cues,
so that the names a synopsis mentions count), fit per movie.

Plain similarity alone puts a synopsis sentence's scene anywhere in the script (on TRIPOD its story
order holds only loosely: see `check_projection`), so by default a sentence may land only on scenes
within `window` (a share of the script, 0.25) of its own relative position in the synopsis: a
synopsis tells the story in order, which is also why the paper's projection uses positions.

A scene's rating is then its distance (in scenes) to the nearest projected turning point, binned to
the product's ordinal 1-5 (`distance_rating`): 5 on a turning point, 4 one or two scenes away, 3
three to six, 2 seven to fifteen, 1 further; with ~200 scenes and five turning points a movie, every
value is used (about 3/10/20/40/27%).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr
from sklearn.feature_extraction.text import TfidfVectorizer

from models.complexity.data import SequenceDoc

TURNING_POINTS = ("opportunity", "change_of_plans", "point_of_no_return", "major_setback", "climax")
# Upper edges of each rating's distance range: distance 0 -> 5, 1-2 -> 4, 3-6 -> 3, 7-15 -> 2, 16+ -> 1.
DISTANCE_EDGES = (0, 2, 6, 15)
WINDOW = 0.25
_SENTENCE = re.compile(r"\[STR_SENT\](.*?)\[END_SENT\]", re.S)
_PARENTHESES = re.compile(r"\([^)]*\)")


@dataclass(frozen=True)
class SynopsisAnnotation:
    """One annotator's turning points on one movie's synopsis."""

    movie: str
    annotator: str
    sentences: tuple[str, ...]
    turning_points: tuple[int, ...]  # 0-based sentence index of each of the five turning points


def load_synopses(path: str | Path) -> dict[str, list[SynopsisAnnotation]]:
    """Every movie's annotations (annotators in order of their number) from TRIPOD's synopsis CSV."""
    import pandas as pd

    frame = pd.read_csv(path)
    out: dict[str, list[SynopsisAnnotation]] = {}
    for row in frame.itertuples(index=False):
        movie, _, annotator = str(row.movie_name).rpartition("_")
        sentences = tuple(s.strip() for s in _SENTENCE.findall(str(row.synopsis_segmented)))
        points = tuple(int(getattr(row, f"tp{k}")) for k in range(1, 6))
        out.setdefault(movie or str(row.movie_name), []).append(
            SynopsisAnnotation(movie, annotator, sentences, points))
    for annotations in out.values():
        annotations.sort(key=lambda a: (len(a.annotator), a.annotator))
    return out


def scene_text(doc: SequenceDoc) -> str:
    """What a synopsis sentence is compared with: the scene's descriptions, dialogue and cue names."""
    return "\n".join(doc.descriptions + doc.dialogue + doc.characters)


def similarity(sentences: Sequence[str], scenes: Sequence[str]) -> np.ndarray:
    """(n_sentences, n_scenes) tf-idf cosine; idf from the movie's scenes, actors' names in () dropped."""
    cleaned = [_PARENTHESES.sub(" ", s) for s in sentences]
    vectorizer = TfidfVectorizer(stop_words="english", sublinear_tf=True, token_pattern=r"(?u)\b[a-zA-Z][\w']+\b")
    try:
        scene_matrix = vectorizer.fit_transform(scenes)
    except ValueError:  # no word at all in any scene
        return np.zeros((len(sentences), len(scenes)))
    return np.asarray((vectorizer.transform(cleaned) @ scene_matrix.T).todense())


def project(sentences: Sequence[str], scenes: Sequence[str], *, top: int = 1,
            positions: Sequence[float] | None = None, window: float | None = None) -> list[list[int]]:
    """For every sentence, the indices of its `top` most similar scenes (ties: the earlier scene).

    With `positions` (each sentence's relative place in its synopsis, 0..1) and `window`, only scenes
    whose relative place in the script is within `window` of the sentence's are candidates.
    """
    scores = similarity(sentences, scenes)
    if positions is not None and window is not None and len(scenes):
        place = np.arange(len(scenes)) / max(len(scenes) - 1, 1)
        outside = np.abs(place[None, :] - np.asarray(positions, dtype=float)[:, None]) > window
        scores = np.where(outside, -np.inf, scores)
    return [[int(i) for i in np.argsort(-row, kind="stable")[:top]] for row in scores]


def sentence_positions(annotation: SynopsisAnnotation) -> np.ndarray:
    """Each synopsis sentence's relative place, 0 (first) to 1 (last)."""
    return np.arange(len(annotation.sentences)) / max(len(annotation.sentences) - 1, 1)


def turning_point_scenes(annotation: SynopsisAnnotation, scenes: Sequence[str], *, top: int = 1,
                         window: float | None = WINDOW) -> list[list[int]]:
    """The scenes each of the five turning points lands on (`top` per turning point)."""
    points = list(annotation.turning_points)
    sentences = [annotation.sentences[i] for i in points]
    return project(sentences, scenes, top=top, positions=sentence_positions(annotation)[points], window=window)


def distance_rating(n_scenes: int, tp_scenes: Sequence[Sequence[int]]) -> np.ndarray:
    """Each scene's rating 1-5 from its distance to the nearest turning-point scene (DISTANCE_EDGES)."""
    marked = sorted({int(s) for scenes in tp_scenes for s in scenes})
    if not marked:
        return np.ones(n_scenes, dtype=int)
    positions = np.arange(n_scenes)
    distance = np.min(np.abs(positions[:, None] - np.asarray(marked)[None, :]), axis=1)
    return (5 - np.searchsorted(np.asarray(DISTANCE_EDGES), distance, side="left")).astype(int)


@dataclass(frozen=True)
class ProjectionCheck:
    """How far a projection can be trusted without scene-level gold (TRIPOD's test scenes are not here)."""

    order_spearman: float  # every synopsis sentence's top scene against its position: a synopsis is in story order
    tp_position_gap: float  # |relative position of the TP sentence - relative position of its scene|, mean
    tp_within_10pct: float  # share of TPs whose scene lies within 10% of the script of the sentence's position


def check_projection(annotation: SynopsisAnnotation, scenes: Sequence[str]) -> ProjectionCheck:
    """Story order and position agreement of one synopsis projected onto its screenplay's scenes by
    similarity alone (no window: with one, the position agreement would hold by construction)."""
    top = np.array([p[0] for p in project(annotation.sentences, scenes)])
    n_sent, n_scenes = len(annotation.sentences), max(len(scenes), 1)
    rho = spearmanr(np.arange(n_sent), top).statistic if n_sent > 2 and len(set(top)) > 1 else float("nan")
    sentence_pos = np.array(annotation.turning_points) / max(n_sent - 1, 1)
    scene_pos = top[list(annotation.turning_points)] / max(n_scenes - 1, 1)
    gap = np.abs(sentence_pos - scene_pos)
    return ProjectionCheck(float(rho), float(gap.mean()), float((gap <= 0.10).mean()))


def annotator_agreement(annotations: Sequence[SynopsisAnnotation], scenes: Sequence[str], *,
                        within: int = 0, window: float | None = WINDOW) -> tuple[int, int]:
    """(agreeing, compared) turning points over annotator pairs: projected scenes within `within` scenes.

    Two annotators of one movie mark their turning points on the same synopsis, so this measures the
    people and the projection together: the part of the target that is not noise.
    """
    projected = [[p[0] for p in turning_point_scenes(a, scenes, window=window)] for a in annotations]
    agree = total = 0
    for i in range(len(projected)):
        for j in range(i + 1, len(projected)):
            for a, b in zip(projected[i], projected[j]):
                agree += int(abs(a - b) <= within)
                total += 1
    return agree, total
