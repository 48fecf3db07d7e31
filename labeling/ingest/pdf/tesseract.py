"""Tesseract as a child process that dies with its ingest: word boxes (TSV) and page orientation (OSD).

pytesseract starts tesseract with no way to tie it to its parent: a kill -9 of the ingest left it
running (3 of 3 tries). Here each run is started with `die_with_parent` (PR_SET_PDEATHSIG) and
killed at its time limit, and every image is checked against a bound before it is handed over:
tesseract refuses an image taller or wider than 32,767 px after minutes of work.
"""

from __future__ import annotations

import math
import os
import re
import resource
import signal
import subprocess
import tempfile
from dataclasses import dataclass

from store.types import ScriptlabelError

MAX_SIDE_PX = 20_000  # tesseract's own limit is 32,767 px a side; a page at 600 dpi is 5,100 × 6,600
MAX_PIXELS = 60_000_000  # a 17 × 22 inch sheet at 400 dpi; pages are rendered within this (pipeline)
TSV_FIELDS = ("left", "top", "width", "height", "conf", "text")


class TesseractTimeout(ScriptlabelError):
    """Tesseract ran past its time limit and was stopped."""


class TesseractFailed(ScriptlabelError):
    """Tesseract could not read the image (it said why on stderr)."""


class ImageTooLarge(ScriptlabelError):
    """An image over the bound reached the OCR call: a bug upstream, never handed to tesseract."""


@dataclass(frozen=True)
class TsvWord:
    left: int
    top: int
    width: int
    height: int
    conf: float  # 0-100 as tesseract reports it
    text: str


def _cpu_s() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


class Deadline:
    """What is left of a page's time limit (0: none), for each tesseract run on it.

    The limit is processor time (this process and the tesseract runs it waited for), not wall time: on
    two cores shared by a dozen busy processes a clean page took 60 s of wall time and 2 s of work, and
    would have been flagged 'timed out' by a clock."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.start = _cpu_s()

    def left(self) -> float:
        if not self.seconds:
            return 0.0
        left = self.seconds - (_cpu_s() - self.start)
        if left <= 0:
            raise TesseractTimeout(f"the page took more than {self.seconds:g} s of processor time")
        return left


def check_bounds(image) -> None:
    if max(image.size) > MAX_SIDE_PX or image.width * image.height > MAX_PIXELS:
        raise ImageTooLarge(f"an image of {image.width} × {image.height} px is over the OCR bound "
                            f"({MAX_SIDE_PX} px a side, {MAX_PIXELS / 1e6:.0f} MP)")


WALL_PER_CPU_S = 30  # a last-resort wall-clock limit: 2 cores shared by 16 busy processes stretch time ~8x


def _preexec(cpu_s: float):
    def setup() -> None:
        import resource

        from labeling.processes import die_with_parent

        die_with_parent()
        if cpu_s:  # the kernel stops it (SIGXCPU) once it used this much processor time, however busy the machine
            limit = max(1, math.ceil(cpu_s))
            resource.setrlimit(resource.RLIMIT_CPU, (limit, limit + 1))
    return setup


def _run(image, args: list[str], *, timeout_s: float) -> str:
    """Run tesseract on `image`; `timeout_s` is processor time (0: no limit)."""
    check_bounds(image)
    env = dict(os.environ, OMP_THREAD_LIMIT="1")  # pages run in parallel processes: one thread each
    with tempfile.TemporaryDirectory(prefix="scriptlabel-ocr-") as tmp:
        path = os.path.join(tmp, "page.pnm")  # uncompressed: writing a PNG costs more than it saves
        image.convert("L").save(path)
        try:
            done = subprocess.run(["tesseract", path, "stdout", *args], capture_output=True, env=env,
                                  timeout=max(60.0, WALL_PER_CPU_S * timeout_s) if timeout_s else None,
                                  preexec_fn=_preexec(timeout_s), check=False)
        except subprocess.TimeoutExpired:  # run() has killed and reaped it
            raise TesseractTimeout(f"tesseract took longer than {WALL_PER_CPU_S * timeout_s:g} s") from None
        except FileNotFoundError:
            raise TesseractFailed("tesseract is not installed (apt install tesseract-ocr); "
                                  "run ./setup.sh") from None
    if done.returncode in (-signal.SIGXCPU, -signal.SIGKILL) and timeout_s:
        raise TesseractTimeout(f"tesseract used more than {timeout_s:g} s of processor time")
    if done.returncode != 0:
        err = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise TesseractFailed(err[-1] if err else f"tesseract exited with status {done.returncode}")
    return done.stdout.decode("utf-8", "replace")


def read_words(image, *, psm: int = 6, timeout_s: float = 0) -> list[TsvWord]:
    """The words tesseract reads in `image` (page segmentation mode `psm`), with boxes in pixels."""
    out = _run(image, ["--psm", str(psm), "tsv"], timeout_s=timeout_s)
    words = []
    for row in out.splitlines()[1:]:
        cols = row.split("\t")
        if len(cols) < 12 or cols[0] != "5":  # level 5: a word
            continue
        text = cols[11].strip()
        conf = float(cols[10])
        if not text or conf < 0:
            continue
        words.append(TsvWord(int(cols[6]), int(cols[7]), int(cols[8]), int(cols[9]), conf, text))
    return words


_ROTATE = re.compile(r"Rotate:\s*(\d+)")
_CONFIDENCE = re.compile(r"Orientation confidence:\s*([\d.]+)")


def orientation(image, *, timeout_s: float = 0) -> tuple[int, float] | None:
    """(degrees to turn the image clockwise to make its text upright, tesseract's confidence), or None
    when tesseract cannot tell (too little text)."""
    try:
        out = _run(image, ["--psm", "0"], timeout_s=timeout_s)
    except TesseractFailed:  # "Too few characters. Skipping this page"
        return None
    rotate, conf = _ROTATE.search(out), _CONFIDENCE.search(out)
    if not rotate:
        return None
    return int(rotate.group(1)) % 360, float(conf.group(1)) if conf else 0.0
