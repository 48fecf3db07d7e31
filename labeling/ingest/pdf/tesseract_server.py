"""Tesseract kept loaded between pages: a child process that holds tesserocr's engine and reads image after
image sent over its pipes (`python -m labeling.ingest.pdf.tesseract_server`).

Starting the tesseract program for every read cost 0.1 s of processor time before it read anything
(program start and loading `eng.traineddata`), two or three times a page. A loaded engine pays that once
per OCR worker, and tesserocr's engine (tesseract 5.5, in its wheel) reads a studio page in about a third
less time than Debian's tesseract 5.3 program. It runs in a child, not in the worker itself, so that
everything the program runner promised still holds: the kernel stops a read past its processor time
(RLIMIT_CPU, set before each read) and kills the child with its worker (PR_SET_PDEATHSIG), and a crash in
tesseract's C++ takes only the child, which the next read starts again.

Protocol, one request at a time: a JSON line `{"op": "words"|"osd", "psm", "width", "height",
"cpu_s"}` followed by width × height bytes of 8-bit grey pixels; the answer is one JSON line:
`{"words": [[left, top, width, height, conf, text], ...]}`, `{"osd": [rotate, confidence] | null}` or
`{"error": "..."}`, each with `"cpu_s"`, the processor time the read took. The child leaves when its pipe closes or after IDLE_S without a request.
"""

from __future__ import annotations

import json
import math
import os
import resource
import select
import sys
from pathlib import Path

IDLE_S = 300.0  # an idle engine leaves (the app's server process would otherwise keep one for good)
TESSDATA_DIRS = ("/usr/share/tesseract-ocr/5/tessdata", "/usr/share/tesseract-ocr/4.00/tessdata",
                 "/usr/share/tessdata", "/usr/local/share/tessdata")


def tessdata_dir() -> str:
    """Where the language data is: $TESSDATA_PREFIX, else where Debian's tesseract-ocr-eng puts it."""
    for candidate in (os.environ.get("TESSDATA_PREFIX"), *TESSDATA_DIRS):
        if candidate and (Path(candidate) / "eng.traineddata").is_file():
            return str(candidate)
    raise FileNotFoundError("tesseract's English data (eng.traineddata) is not installed "
                            "(apt install tesseract-ocr-eng); run ./setup.sh")


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _limit_cpu(seconds: float) -> None:
    """Let the kernel stop this process (SIGXCPU) once this read used `seconds` of processor time (0: none)."""
    soft = math.ceil(_cpu_s() + seconds) if seconds else resource.RLIM_INFINITY
    resource.setrlimit(resource.RLIMIT_CPU, (soft, resource.RLIM_INFINITY))


def _read_exactly(stream, n: int) -> bytes:
    chunks, left = [], n
    while left:
        chunk = stream.read(left)
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


class Engines:
    """The page reader (eng, any psm) and the orientation reader (osd), each loaded on first use."""

    def __init__(self):
        import tesserocr

        self._tesserocr = tesserocr
        self._path = tessdata_dir()
        self._words = None
        self._osd = None

    def words(self, pixels: bytes, width: int, height: int, psm: int) -> list[list]:
        tesserocr = self._tesserocr
        if self._words is None:
            self._words = tesserocr.PyTessBaseAPI(path=self._path, lang="eng", psm=psm)
        api = self._words
        api.SetPageSegMode(psm)
        api.SetImageBytes(pixels, width, height, 1, width)
        api.Recognize()
        level, out = tesserocr.RIL.WORD, []
        iterator = api.GetIterator()
        if iterator is not None:
            for word in tesserocr.iterate_level(iterator, level):
                text = word.GetUTF8Text(level)
                box = word.BoundingBox(level)
                if text and box:
                    left, top, right, bottom = box
                    out.append([left, top, right - left, bottom - top, word.Confidence(level), text])
        api.Clear()
        return out

    def osd(self, pixels: bytes, width: int, height: int) -> list | None:
        tesserocr = self._tesserocr
        if self._osd is None:
            self._osd = tesserocr.PyTessBaseAPI(path=self._path, lang="osd", psm=tesserocr.PSM.OSD_ONLY)
        api = self._osd
        api.SetImageBytes(pixels, width, height, 1, width)
        found = api.DetectOrientationScript()  # None: too few characters to tell
        api.Clear()
        if not found:
            return None
        # tesseract names the text's orientation; the program's "Rotate:" (what turns it upright) is its complement
        return [(360 - int(found["orient_deg"])) % 360, float(found["orient_conf"])]


def serve(requests, answers) -> None:
    from labeling.processes import die_with_parent

    die_with_parent()
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # a read stopped at its time limit leaves no core file
    try:
        engines = Engines()
    except Exception as exc:  # no tesserocr, no language data: the client falls back to the program
        answers.write(json.dumps({"error": f"{type(exc).__name__}: {exc}"}).encode() + b"\n")
        answers.flush()
        return
    answers.write(b'{"ready": true}\n')
    answers.flush()
    while True:
        ready, _w, _x = select.select([requests], [], [], IDLE_S)
        if not ready:
            return
        header = requests.readline()
        if not header:
            return
        request = json.loads(header)
        width, height = int(request["width"]), int(request["height"])
        pixels = _read_exactly(requests, width * height)
        started = _cpu_s()
        _limit_cpu(float(request.get("cpu_s") or 0))
        try:
            if request["op"] == "osd":
                answer = {"osd": engines.osd(pixels, width, height)}
            else:
                answer = {"words": engines.words(pixels, width, height, int(request.get("psm", 6)))}
        except RuntimeError as exc:  # tesserocr's own error: the image cannot be read
            answer = {"error": str(exc) or "tesseract could not read the image"}
        _limit_cpu(0)
        answer["cpu_s"] = round(_cpu_s() - started, 4)
        answers.write(json.dumps(answer).encode() + b"\n")
        answers.flush()


if __name__ == "__main__":
    os.environ["OMP_THREAD_LIMIT"] = "1"
    try:
        serve(sys.stdin.buffer, sys.stdout.buffer)
    except (EOFError, BrokenPipeError, KeyboardInterrupt):
        pass
