"""Sentiment and affect features of a sequence: VADER and the NRC emotion lexicon, per component.

The seed study's next step: blend numerical signals from VADER (Hutto & Gilbert 2014, the
`vaderSentiment` package, MIT, lexicon shipped in the package) and the NRC Word-Emotion Association
Lexicon (Mohammad & Turney 2013, shipped as a JSON file by the `nrclex` package; the NRC lexicon is
free for research use only) into the complexity models. Nothing is fetched at run time: both lexicons
are files inside the installed packages.

For each of a sequence's descriptions and dialogue (character cues carry no sentiment):
- VADER compound / pos / neg / neu, averaged over the component's lines weighted by their words
  (VADER is built for sentence-sized text; a stored line is about that);
- NRC counts of the ten affects (anger, anticipation, disgust, fear, joy, negative, positive,
  sadness, surprise, trust) per 100 words, so the block says how the text feels, not how long it is
  (the counts block already carries length);
- the trajectory within the sequence: VADER compound over the first and the last third of the
  lines, its slope over the line position (0 -> 1), and NRC polarity ((positive - negative) per 100
  words) over the first and last third.

NRCLex's `load_raw_text` tokenizes with TextBlob, whose tokenizers need NLTK corpora downloaded at run
time; `nrc_counts` tokenizes itself and hands the tokens to NRCLex's `load_token_list` instead.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import cache, lru_cache

import numpy as np

from models.complexity.data import SequenceDoc

SENTIMENT_COMPONENTS: tuple[str, ...] = ("descriptions", "dialogue")
VADER_KEYS: tuple[str, ...] = ("compound", "pos", "neg", "neu")
NRC_AFFECTS: tuple[str, ...] = ("anger", "anticipation", "disgust", "fear", "joy", "negative",
                                "positive", "sadness", "surprise", "trust")
TRAJECTORY_KEYS: tuple[str, ...] = ("compound_first", "compound_last", "compound_slope",
                                    "polarity_first", "polarity_last")
_PER_COMPONENT = VADER_KEYS + tuple(f"nrc_{a}" for a in NRC_AFFECTS) + TRAJECTORY_KEYS
SENTIMENT_KEYS: tuple[str, ...] = tuple(f"{c}_{k}" for c in SENTIMENT_COMPONENTS for k in _PER_COMPONENT)
_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")
_LINE_CACHE = 200_000  # a feature script has ~4,000 lines; this holds a large library's worth


@cache
def _vader():
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()  # reads vader_lexicon.txt from the package folder


@cache
def _nrc_lexicon() -> dict[str, list[str]]:
    from nrclex import NRCLex

    return NRCLex().__lexicon__  # the bundled nrc_en.json (NRCLex's own default)


def tokens(text: str) -> list[str]:
    """Lower-case words of `text` (apostrophes kept inside words: "don't")."""
    return _WORD.findall(text.lower())


def vader_scores(text: str) -> dict[str, float]:
    """VADER's compound (-1..1), pos, neg and neu (shares summing to 1) for one piece of text."""
    scores = _vader().polarity_scores(text)
    return {k: float(scores[k]) for k in VADER_KEYS}


def nrc_counts(text: str) -> dict[str, int]:
    """How many words of `text` the NRC lexicon associates with each of the ten affects.

    A word counts once per affect it carries; a plural not in the lexicon is looked up without its
    final "s" ("screams" -> "scream").
    """
    from nrclex import NRCLex

    lexicon = _nrc_lexicon()
    words = [w if w in lexicon or not w.endswith("s") or w[:-1] not in lexicon else w[:-1]
             for w in tokens(text)]
    analysis = NRCLex()
    analysis.load_token_list(words)
    return {a: int(analysis.raw_emotion_scores.get(a, 0)) for a in NRC_AFFECTS}


@lru_cache(maxsize=_LINE_CACHE)
def _line_row(text: str) -> tuple[float, ...]:
    """(words, compound, pos, neg, neu, NRC counts...) of one line; cached: CV featurizes a line many times."""
    n_words = len(tokens(text))
    if not n_words:
        return (0.0,) * (1 + len(VADER_KEYS) + len(NRC_AFFECTS))
    vader = vader_scores(text)
    nrc = nrc_counts(text)
    return (float(n_words), *(vader[k] for k in VADER_KEYS), *(float(nrc[a]) for a in NRC_AFFECTS))


def component_features(lines: Sequence[str]) -> np.ndarray:
    """The block's values for one component's lines, in the order of `_PER_COMPONENT` (zeros if no words)."""
    rows = np.array([_line_row(line) for line in lines], dtype=float).reshape(-1, 1 + 4 + len(NRC_AFFECTS))
    rows = rows[rows[:, 0] > 0]
    out = np.zeros(len(_PER_COMPONENT))
    if not len(rows):
        return out
    words, vader, nrc = rows[:, 0], rows[:, 1:5], rows[:, 5:]
    out[:4] = words @ vader / words.sum()
    out[4:4 + len(NRC_AFFECTS)] = 100.0 * nrc.sum(0) / words.sum()
    compound = vader[:, 0]
    polarity = nrc[:, NRC_AFFECTS.index("positive")] - nrc[:, NRC_AFFECTS.index("negative")]
    thirds = np.array_split(np.arange(len(rows)), 3) if len(rows) >= 3 else [np.arange(len(rows))] * 3
    first, last = thirds[0], thirds[-1]
    slope = 0.0
    if len(rows) >= 2:
        position = np.linspace(0.0, 1.0, len(rows))
        slope = float(np.polyfit(position, compound, 1)[0])
    out[4 + len(NRC_AFFECTS):] = (
        compound[first].mean(), compound[last].mean(), slope,
        100.0 * polarity[first].sum() / words[first].sum(), 100.0 * polarity[last].sum() / words[last].sum(),
    )
    return out


def sentiment_matrix(docs: Sequence[SequenceDoc]) -> np.ndarray:
    """(n, len(SENTIMENT_KEYS)) sentiment and affect features of each sequence's descriptions and dialogue."""
    return np.array([np.concatenate([component_features(doc.component(c)) for c in SENTIMENT_COMPONENTS])
                     for doc in docs], dtype=float).reshape(len(docs), len(SENTIMENT_KEYS))


def sentiment_features(doc: SequenceDoc) -> dict[str, float]:
    """One sequence's block as a name -> value mapping (for display and checks)."""
    return dict(zip(SENTIMENT_KEYS, sentiment_matrix([doc])[0].tolist()))
