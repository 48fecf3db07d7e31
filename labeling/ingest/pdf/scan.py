"""A scanned page made fit to read before tesseract sees it: paper and ink levels, blank backs,
pages fed sideways, skew, and two pages scanned side by side.

Every check works on a small copy (about 50-100 dpi) with numpy: together they cost a few hundredths
of a second, against a second or more for one tesseract run, so a page is never read twice to find
out what a look at its ink shows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

BLANK_INK_SHARE = 2e-4  # share of a 50-dpi copy darker than the paper: below it the page is blank (a speck or two)
INK_BELOW_PAPER = 50  # grey levels darker than the paper that count as ink on the 50-dpi copy
EDGE_IN = 0.25  # a scan's dark border is not ink
MAX_SKEW_DEG = 6.0
SKEW_KEPT_DEG = 0.15  # below this a page is left as it is (a rotation blurs it a little)
SPREAD_ASPECT = 1.15  # width / height from which a page may be two pages side by side
GUTTER_IN = 0.3  # the blank strip between the two pages of a spread


@dataclass(frozen=True)
class Half:
    """One page of a two-up spread (or the whole page): its image and where it sits on the page."""

    image: object  # PIL image
    x_offset_px: int  # where the half was cut from the page
    page_x_px: int = 0  # where its own page begins (indents count from there): the spread's middle for the right


def small_copy(image, dpi: int, target_dpi: int) -> tuple[np.ndarray, float]:
    """A box-filtered copy near `target_dpi` (averaging also evens out scanner noise) and its dpi."""
    factor = max(1, int(round(dpi / target_dpi)))
    return np.asarray(image.reduce(factor) if factor > 1 else image, dtype=np.float32), dpi / factor


def normalize(image):
    """Paper white and ink black: dark, coloured or faded paper stretched to the full grey range.

    A clean render (paper 255, ink near 0) is returned as it is."""
    from PIL import Image

    pixels = np.asarray(image)
    # Paper from a box-averaged copy (scanner noise averages out), ink from the page as it is.
    paper = float(np.percentile(np.asarray(image.reduce(4), dtype=np.float32), 90))
    ink = float(np.percentile(pixels[::2, ::2], 0.5))
    if paper >= 235 and ink <= 60:
        return image
    if paper - ink < 30:  # no contrast at all: nothing to stretch (blank, or a photo of a grey wall)
        return image
    lut = [int(min(255, max(0, round((v - ink) * 255.0 / (paper - ink))))) for v in range(256)]
    return Image.fromarray(pixels).point(lut)


def _ink_mask(image, dpi: int, target_dpi: int) -> tuple[np.ndarray, float]:
    small, small_dpi = small_copy(image, dpi, target_dpi)
    paper = float(np.median(small))
    ink = small < paper - INK_BELOW_PAPER
    edge = max(1, int(EDGE_IN * small_dpi))
    ink[:edge], ink[-edge:], ink[:, :edge], ink[:, -edge:] = False, False, False, False
    return ink, small_dpi


def is_blank(image, dpi: int) -> bool:
    """No more ink than a few specks once scanner noise is averaged out (the empty back of a page)."""
    ink, _ = _ink_mask(image, dpi, 50)
    return float(ink.mean()) < BLANK_INK_SHARE


def _sharpness(coords: np.ndarray, size: int) -> float:
    """How peaked the ink's projection is: text lines give tall narrow peaks, a projection across them a flat one."""
    hist = np.bincount(np.clip(coords, 0, size - 1).astype(np.int64), minlength=size).astype(np.float64)
    return float((hist ** 2).sum() / max(hist.sum(), 1.0) ** 2 * size)


def _level(ys: np.ndarray, xs: np.ndarray, height: int, width: int) -> tuple[float, float]:
    """(angle in degrees, sharpness) of the ink's sharpest row projection within ±MAX_SKEW_DEG."""
    if len(ys) > 200_000:  # a dense page: a sample shows the same lines
        keep = np.random.default_rng(0).choice(len(ys), 200_000, replace=False)
        ys, xs = ys[keep], xs[keep]
    ys, xs = ys.astype(np.float64), xs.astype(np.float64) - width / 2
    pad = int(width * math.tan(math.radians(MAX_SKEW_DEG))) + 2
    size = height + 2 * pad

    def score(angle: float) -> float:
        return _sharpness(ys - xs * math.tan(math.radians(angle)) + pad, size)

    best = max(np.arange(-MAX_SKEW_DEG, MAX_SKEW_DEG + 1e-9, 0.25), key=score)
    best = max(np.arange(best - 0.25, best + 0.25 + 1e-9, 0.05), key=score)
    return float(round(best, 2)), score(best)


def sideways(image, dpi: int) -> bool:
    """True when the page's text runs top to bottom (fed into the scanner sideways): levelled as well as
    it can be either way (a page may be skewed too), its ink projects into sharper peaks across the
    columns than across the rows."""
    ink, _ = _ink_mask(image, dpi, 75)
    ys, xs = np.nonzero(ink)
    if len(ys) < 200:
        return False
    _angle, rows = _level(ys, xs, ink.shape[0], ink.shape[1])
    _angle, columns = _level(xs, ys, ink.shape[1], ink.shape[0])
    return columns > 1.3 * rows


def skew_degrees(image, dpi: int) -> float:
    """The angle (degrees, counter-clockwise positive as PIL turns) that makes the text lines level."""
    ink, _ = _ink_mask(image, dpi, 100)
    ys, xs = np.nonzero(ink)
    if len(ys) < 200:
        return 0.0
    # ys - x·tan(a) levels lines that fall by tan(a) per pixel to the right: turning the image by a
    # (counter-clockwise in PIL) lifts them level.
    return _level(ys, xs, ink.shape[0], ink.shape[1])[0]


def deskew(image, dpi: int):
    """The page turned so its text lines are level (up to ±MAX_SKEW_DEG), on white paper; the same size."""
    from PIL import Image

    angle = skew_degrees(image, dpi)
    if abs(angle) < SKEW_KEPT_DEG:
        return image, 0.0
    return image.rotate(angle, resample=Image.BICUBIC, fillcolor=255), angle


def split_spread(image, dpi: int) -> list[Half]:
    """Two pages scanned side by side (a landscape image with a blank gutter near its middle) as two
    halves, left then right; any other page as one."""
    if image.width < SPREAD_ASPECT * image.height:
        return [Half(image, 0)]
    ink, small_dpi = _ink_mask(image, dpi, 50)
    columns = ink.any(axis=0)
    scale = image.width / ink.shape[1]
    lo, hi = int(0.35 * len(columns)), int(0.65 * len(columns))
    best, start = (0, 0), None
    for x in range(lo, hi + 1):
        empty = x < hi and not columns[x]
        if empty and start is None:
            start = x
        elif not empty and start is not None:
            if x - start > best[1] - best[0]:
                best = (start, x)
            start = None
    if (best[1] - best[0]) / small_dpi < GUTTER_IN or not columns[:lo].any() or not columns[hi:].any():
        return [Half(image, 0)]
    cut = int((best[0] + best[1]) / 2 * scale)
    # Cut in the gutter, but count the right page's indents from the spread's middle: both pages of a
    # two-up scan are one paper size, and the gutter's middle is off it by the difference of the margins.
    return [Half(image.crop((0, 0, cut, image.height)), 0),
            Half(image.crop((cut, 0, image.width, image.height)), cut, image.width // 2)]
