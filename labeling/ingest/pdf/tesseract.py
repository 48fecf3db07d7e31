"""Tesseract as a child process that dies with its ingest: word boxes and page orientation (OSD).

Two ways to run it, the same answers: a loaded engine kept between pages (`tesseract_server`, tesserocr
in a child process; the default whenever tesserocr is installed) or the tesseract program started for
each read (`SCRIPTLABEL_TESSERACT=program`, or when tesserocr is missing). pytesseract starts tesseract
with no way to tie it to its parent: a kill -9 of the ingest left it running (3 of 3 tries). Here either
child is started with `die_with_parent` (PR_SET_PDEATHSIG) and stopped at its processor-time limit, and
every image is checked against a bound before it is handed over: tesseract refuses an image taller or
wider than 32,767 px after minutes of work.
"""

from __future__ import annotations

import atexit
import json
import math
import os
import re
import resource
import select
import signal
import subprocess
import sys
import tempfile
import threading
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


def cpu_seconds() -> float:
    """Processor seconds of this process, the children it waited for and its loaded engine's reads (a child
    still running, so not in RUSAGE_CHILDREN yet)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    engine = _ENGINE.unreaped_s if _ENGINE is not None and _ENGINE_PID == os.getpid() else 0.0
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime + engine


class Deadline:
    """What is left of a page's time limit (0: none), for each tesseract run on it.

    The limit is processor time (this process and the tesseract runs it waited for), not wall time: on
    two cores shared by a dozen busy processes a clean page took 60 s of wall time and 2 s of work, and
    would have been flagged 'timed out' by a clock."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.start = cpu_seconds()

    def left(self) -> float:
        if not self.seconds:
            return 0.0
        left = self.seconds - (cpu_seconds() - self.start)
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


def _run_program(image, args: list[str], *, timeout_s: float) -> str:
    """Run the tesseract program on `image`; `timeout_s` is processor time (0: no limit)."""
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
    check_bounds(image)
    engine = loaded_engine()
    if engine is not None:
        rows = engine.ask("words", image, psm=psm, timeout_s=timeout_s)["words"]
        return [TsvWord(int(l), int(t), int(w), int(h), float(c), str(x).strip()) for l, t, w, h, c, x in rows
                if str(x).strip() and c >= 0]
    out = _run_program(image, ["--psm", str(psm), "tsv"], timeout_s=timeout_s)
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
    check_bounds(image)
    engine = loaded_engine()
    if engine is not None:
        found = engine.ask("osd", image, timeout_s=timeout_s)["osd"]
        return (int(found[0]) % 360, float(found[1])) if found else None
    try:
        out = _run_program(image, ["--psm", "0"], timeout_s=timeout_s)
    except TesseractFailed:  # "Too few characters. Skipping this page"
        return None
    rotate, conf = _ROTATE.search(out), _CONFIDENCE.search(out)
    if not rotate:
        return None
    return int(rotate.group(1)) % 360, float(conf.group(1)) if conf else 0.0


class LoadedEngine:
    """This process's `tesseract_server` child: started on first use, started again after it was stopped
    at a time limit, crashed or left when idle. One read at a time (a lock: the app reads in threads)."""

    def __init__(self):
        self._proc: subprocess.Popen | None = None
        self._lock = threading.Lock()
        self.unreaped_s = 0.0  # processor seconds of reads by the running child (counted by the kernel once reaped)

    def _start(self) -> subprocess.Popen:
        env = dict(os.environ, OMP_THREAD_LIMIT="1")
        proc = subprocess.Popen([sys.executable, "-m", "labeling.ingest.pdf.tesseract_server"], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env,
                                preexec_fn=_preexec(0))
        hello = _answer(proc, wall_s=120.0)
        if not hello or "ready" not in hello:
            _stop(proc)
            raise EngineUnavailable((hello or {}).get("error", "the tesseract engine did not start"))
        return proc

    def ask(self, op: str, image, *, psm: int = 6, timeout_s: float = 0) -> dict:
        grey = image.convert("L")
        header = json.dumps({"op": op, "psm": psm, "width": grey.width, "height": grey.height,
                             "cpu_s": timeout_s}).encode() + b"\n"
        with self._lock:
            for attempt in (1, 2):
                if self._proc is None or self._proc.poll() is not None:
                    self._proc = self._start()
                proc = self._proc
                try:
                    proc.stdin.write(header)
                    proc.stdin.write(grey.tobytes())
                    proc.stdin.flush()
                except BrokenPipeError:  # it left while idle just now: once more with a new one
                    self._proc = None
                    if attempt == 1:
                        continue
                    raise TesseractFailed("the tesseract engine stopped before reading") from None
                answer = _answer(proc, wall_s=max(60.0, WALL_PER_CPU_S * timeout_s) if timeout_s else None)
                if answer is None:
                    self._proc = None
                    code = self._reap(proc)
                    if timeout_s and code in (-signal.SIGXCPU, -signal.SIGKILL, None):
                        raise TesseractTimeout(f"tesseract used more than {timeout_s:g} s of processor time")
                    raise TesseractFailed(f"the tesseract engine stopped (exit status {code})")
                self.unreaped_s += float(answer.get("cpu_s", 0.0))
                if "error" in answer:
                    raise TesseractFailed(answer["error"])
                return answer
        raise AssertionError("unreachable")

    def _reap(self, proc: subprocess.Popen) -> int | None:
        code = _stop(proc)
        self.unreaped_s = 0.0  # reaped: the kernel counts its time among this process's children now
        return code

    def close(self) -> None:
        """Let the child leave (its pipe closes) and reap it, so its processor time is counted as ours."""
        with self._lock:
            if self._proc is not None:
                try:
                    self._proc.stdin.close()
                    self._proc.wait(timeout=10)
                except (OSError, subprocess.TimeoutExpired):
                    pass
                self._reap(self._proc)
                self._proc = None


class EngineUnavailable(ScriptlabelError):
    """tesserocr or its language data is missing: the tesseract program is used instead."""


def _answer(proc: subprocess.Popen, *, wall_s: float | None) -> dict | None:
    """The child's next JSON line, or None when it died or gave none within `wall_s` (a last resort: the
    processor-time limit is the kernel's)."""
    ready, _w, _x = select.select([proc.stdout], [], [], wall_s)
    if not ready:
        return None
    line = proc.stdout.readline()
    return json.loads(line) if line else None


def _stop(proc: subprocess.Popen) -> int | None:
    """Kill and reap the child; its exit status (None if it was still running: killed at the wall limit)."""
    code = proc.poll()
    if code is None:
        proc.kill()
        proc.wait()
    for stream in (proc.stdin, proc.stdout):
        try:
            stream.close()
        except OSError:
            pass
    return code


_ENGINE: LoadedEngine | None = None
_ENGINE_PID: int | None = None
_NO_ENGINE = False


def loaded_engine() -> LoadedEngine | None:
    """This process's loaded engine, or None to run the tesseract program per read: when
    SCRIPTLABEL_TESSERACT=program, or tesserocr cannot start here (said once on stderr)."""
    global _ENGINE, _ENGINE_PID, _NO_ENGINE
    if _NO_ENGINE or os.environ.get("SCRIPTLABEL_TESSERACT", "").lower() == "program":
        return None
    if _ENGINE is None or _ENGINE_PID != os.getpid():  # a forked worker starts its own
        import importlib.util

        if importlib.util.find_spec("tesserocr") is None:
            _NO_ENGINE = True
            return None
        _ENGINE, _ENGINE_PID = LoadedEngine(), os.getpid()
        atexit.register(close_engine)
        try:
            with _ENGINE._lock:
                _ENGINE._proc = _ENGINE._start()
        except EngineUnavailable as exc:
            print(f"scriptlabel: tesserocr cannot be used ({exc}); running the tesseract program for each read",
                  file=sys.stderr)
            _ENGINE, _NO_ENGINE = None, True
            return None
    return _ENGINE


def close_engine() -> None:
    """Stop this process's loaded engine (at exit, and in an OCR worker's clean-up)."""
    if _ENGINE is not None and _ENGINE_PID == os.getpid():
        _ENGINE.close()
