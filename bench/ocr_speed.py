"""Where the processor time of OCR goes, page by page: studio PDF pages rasterized like a scan, each read by
the product's own page path (`labeling.ingest.pdf.ocr.ocr_pdf_page`, as an OCR worker runs it) with
every phase timed in processor seconds (this process and its children: load on a shared machine does
not change them).

    nice -n 15 uv run python bench/ocr_speed.py [--hold-out SLUG ...] [--pages 4] [--scan-dpi 200]
        [--dpi 200] [--workers 2]

Tesseract is the loaded engine (tesserocr, `labeling/ingest/pdf/tesseract_server.py`) unless
SCRIPTLABEL_TESSERACT=program (the tesseract program started for each read), for a comparison.

Phases: render (PyMuPDF), checks (blank, paper levels, sideways, skew, two-up: `scan`), page read
(tesseract's whole-page read), orientation (tesseract OSD, only for sideways or poor pages), re-read
(the crops' sheet: building it and tesseract's read of it), the rest (layout, the small page image).
`pages_per_cpu_s` is pages per processor second of one core, the first page's imports and engine start
left out as a worker pays them once; `tesseract_calls` counts tesseract runs per page. With
`--workers N` the same pages are also OCR'd through `iter_ocr_pages` in N worker processes, timed on
the wall clock and in processor seconds of the whole process tree (user+sys of the workers and
tesseract, process start included).

Prints JSON on stdout; progress on stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from ocr_accuracy import DATA, pick_pages  # noqa: E402

HELD_OUT = ["mr-right", "dirk-gently-102-lost-and-found", "me-him-her"]


def cpu_s() -> float:
    from labeling.ingest.pdf.tesseract import cpu_seconds

    return cpu_seconds()  # this process, its reaped children and its loaded tesseract engine's reads


class Phases:
    """Processor seconds per phase: each wrapped function's time, less the wrapped calls made inside it."""

    def __init__(self):
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self._stack: list[list[float]] = []

    def wrap(self, module, name: str, phase: str, *, count_only: bool = False) -> None:
        original = getattr(module, name)

        def counted(*args, **kwargs):
            self.calls[phase] += 1
            return original(*args, **kwargs)

        def timed(*args, **kwargs):
            self._stack.append([0.0])
            started = cpu_s()
            try:
                return original(*args, **kwargs)
            finally:
                spent = cpu_s() - started
                inner = self._stack.pop()[0]
                self.seconds[phase] += spent - inner
                self.calls[phase] += 1
                if self._stack:
                    self._stack[-1][0] += spent

        setattr(module, name, counted if count_only else timed)


def build_scan(slugs: list[str], pages: int, scan_dpi: int, out: Path) -> tuple[Path, int]:
    from PIL import Image

    from labeling.ingest.pdf.mupdf import pymupdf

    images: list[Image.Image] = []
    for slug in slugs:
        with pymupdf.open(DATA / "studio_pdfs" / "pdf" / f"{slug}.pdf") as doc:
            for page in pick_pages(doc.page_count, pages):
                pix = doc[page - 1].get_pixmap(dpi=scan_dpi, colorspace=pymupdf.csGRAY)
                images.append(Image.frombytes("L", (pix.width, pix.height), pix.samples))
    images[0].save(out, save_all=True, append_images=images[1:], resolution=scan_dpi)
    return out, len(images)


def per_page(scan: Path, n_pages: int, dpi: int) -> dict:
    from labeling.ingest.pdf import ocr, scan as checks, tesseract

    phases = Phases()
    phases.wrap(ocr, "render_page", "render")
    for name in ("is_blank", "normalize", "sideways", "deskew", "split_spread"):
        phases.wrap(checks, name, "checks")
    phases.wrap(ocr, "page_words", "page_read")
    phases.wrap(ocr, "reread_poor_lines", "reread")
    phases.wrap(tesseract, "orientation", "orientation")
    phases.wrap(ocr, "_small", "small_image")
    phases.wrap(tesseract, "read_words", "tesseract_words", count_only=True)  # timed in its caller's phase
    ocr.ocr_pdf_page(str(scan), 1, dpi)  # imports, the document's first open and the engine's start: once a worker
    phases.seconds.clear()
    phases.calls.clear()
    started = cpu_s()
    for page in range(1, n_pages + 1):
        ocr.ocr_pdf_page(str(scan), page, dpi, None, 60)
    total = cpu_s() - started
    named = {k: v for k, v in phases.seconds.items() if k != "tesseract_words"}
    calls = phases.calls.get("tesseract_words", 0) + phases.calls.get("orientation", 0)
    return {"pages": n_pages, "cpu_s": round(total, 2), "cpu_s_per_page": round(total / n_pages, 3),
            "pages_per_cpu_s": round(n_pages / total, 3),
            "per_page_s": {k: round(v / n_pages, 3) for k, v in sorted(named.items())}
            | {"other": round((total - sum(named.values())) / n_pages, 3)},
            "tesseract_calls_per_page": round(calls / n_pages, 2),
            "rereads_per_page": round(phases.calls.get("tesseract_words", 0) / n_pages - 1, 2)}


def parallel(scan: Path, n_pages: int, dpi: int, workers: int) -> dict:
    """The pages through the ingest's own worker pool: wall seconds, and processor seconds of the tree."""
    from labeling.ingest.pdf.ocr import iter_ocr_pages

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as images:
        pages = list(iter_ocr_pages(scan, list(range(1, n_pages + 1)), dpi=dpi, workers=workers,
                                    image_dir=images, timeout_s=60))
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"workers": workers, "pages": len(pages), "wall_s": round(wall, 2), "tree_cpu_s": round(cpu, 2),
            "pages_per_wall_s": round(n_pages / wall, 3), "pages_per_tree_cpu_s": round(n_pages / cpu, 3),
            "flagged": sum(1 for p in pages if p.flag), "lines": sum(len(p.lines) for p in pages)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hold-out", nargs="+", default=HELD_OUT, metavar="SLUG")
    parser.add_argument("--pages", type=int, default=4, help="pages per script (spread evenly; title page skipped)")
    parser.add_argument("--scan-dpi", type=int, default=200, help="the resolution the pages are scanned at")
    parser.add_argument("--dpi", type=int, default=None, help="the resolution OCR renders at (default: ingest's)")
    parser.add_argument("--workers", type=int, default=0, help="also OCR the pages in N worker processes")
    args = parser.parse_args()
    if not (DATA / "studio_pdfs").exists():
        raise SystemExit(f"{DATA / 'studio_pdfs'}: not found; this bench needs ../shared/data")
    from labeling.ingest.pdf.ocr import DEFAULT_DPI

    os.environ["OMP_THREAD_LIMIT"] = "1"
    dpi = args.dpi or DEFAULT_DPI
    with tempfile.TemporaryDirectory() as tmp:
        scan, n_pages = build_scan(args.hold_out, args.pages, args.scan_dpi, Path(tmp) / "scan.pdf")
        print(f"{n_pages} pages scanned at {args.scan_dpi} dpi", file=sys.stderr, flush=True)
        report = {"scripts": args.hold_out, "scan_dpi": args.scan_dpi, "dpi": dpi,
                  "one_core": per_page(scan, n_pages, dpi)}
        if args.workers:
            report["parallel"] = parallel(scan, n_pages, dpi, args.workers)
    report["tesseract"] = "program" if os.environ.get("SCRIPTLABEL_TESSERACT", "").lower() == "program" else "loaded"
    report["target_pages_per_cpu_s"] = 1.0
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
