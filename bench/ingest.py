"""Ingest benchmark: text-layer speed, OCR speed and fidelity, time to the first usable page.

    uv run python bench/ingest.py [--quick]

Prints one JSON object. Reads the studio PDFs from ../shared/data (never copied into the repo).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_THREAD_LIMIT", "1")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from labeling.settings import process_defaults  # noqa: E402

process_defaults()  # an entry point: libgomp's spin count (and Keras' backend) before xgboost loads

from rapidfuzz import fuzz  # noqa: E402

from labeling.ingest.pipeline import ingest_path  # noqa: E402
from labeling.ingest.pdf.ocr import iter_ocr_pages  # noqa: E402
from labeling.ingest.pdf.textlayer import open_pdf, text_layer_page_lines  # noqa: E402
from store.db import open_db  # noqa: E402

DATA = Path(os.environ.get("SCRIPTLABEL_SHARED_DATA", REPO.parent / "shared" / "data"))
OCR_SAMPLE = {"chronicle": [3, 10, 40, 70], "suits-pilot": [5, 30, 60], "rick-and-morty-102-lawnmower-dog": [4, 15, 30]}


def text_layer_speed(pdfs: list[Path]) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        db = open_db(Path(tmp) / "bench.db")
        pages = lines = 0
        start = time.perf_counter()
        for pdf in pdfs:
            result = ingest_path(db, pdf, ocr="never")
            pages += result.pages
            lines += result.lines
        elapsed = time.perf_counter() - start
    return {"pdfs": len(pdfs), "pages": pages, "lines": lines, "seconds": round(elapsed, 2),
            "pages_per_s": round(pages / elapsed, 1), "target_pages_per_s": 25}


def rasterize(pdf: Path, pages: list[int], out: Path, dpi: int = 200) -> Path:
    """An image-only PDF of the chosen pages: what a scan of them looks like to the OCR path."""
    from pdf2image import convert_from_path

    images = [convert_from_path(str(pdf), dpi=dpi, first_page=p, last_page=p, grayscale=True)[0] for p in pages]
    images[0].save(out, save_all=True, append_images=images[1:], resolution=dpi)
    return out


def fidelity(reference, ocr_lines) -> tuple[int, int, list[float]]:
    intact, indent_errors = 0, []
    for ref in reference:
        best, best_line = 0.0, None
        for line in ocr_lines:
            score = fuzz.ratio(ref.text, line.text) / 100.0
            if score > best:
                best, best_line = score, line
        if best >= 0.9:
            intact += 1
            indent_errors.append(abs(best_line.indent - ref.indent))
    return intact, len(reference), indent_errors


def ocr_runs(quick: bool) -> dict:
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        scans, references = [], []
        for slug, pages in OCR_SAMPLE.items():
            pdf = DATA / "studio_pdfs" / "pdf" / f"{slug}.pdf"
            doc = open_pdf(pdf)
            references.append([text_layer_page_lines(doc[p - 1]) for p in pages])
            doc.close()
            scans.append(rasterize(pdf, pages, Path(tmp) / f"{slug}.pdf"))
        settings = [(300, 2)] if quick else [(200, 1), (200, 2), (300, 1), (300, 2)]
        for dpi, workers in settings:
            n_pages, intact, total, indent_errors = 0, 0, 0, []
            start = time.perf_counter()
            for scan, refs in zip(scans, references):
                for ocr_page, ref in zip(iter_ocr_pages(scan, list(range(1, len(refs) + 1)), dpi=dpi,
                                                        workers=workers), refs):
                    n_pages += 1
                    a, b, errs = fidelity(ref, ocr_page.lines)
                    intact += a
                    total += b
                    indent_errors += errs
            elapsed = time.perf_counter() - start
            pps = n_pages / elapsed
            results[f"{dpi}dpi_{workers}w"] = {
                "pages": n_pages, "seconds": round(elapsed, 1), "pages_per_s": round(pps, 3),
                "minutes_for_120_pages": round(120 / pps / 60, 2),
                "lines_intact_share": round(intact / total, 4), "reference_lines": total,
                "indent_error_cols_mean": round(statistics.mean(indent_errors), 3) if indent_errors else None,
                "indent_error_cols_p95": round(sorted(indent_errors)[int(0.95 * (len(indent_errors) - 1))], 3)
                if indent_errors else None,
            }
    return {"settings": results, "targets": {"pages_per_s": 0.5, "lines_intact_share": 0.97}}


def first_page_latency() -> dict:
    """Seconds from the start of a scanned-PDF ingest until its first page is stored and usable."""
    with tempfile.TemporaryDirectory() as tmp:
        pdf = DATA / "studio_pdfs" / "pdf" / "chronicle.pdf"
        scan = rasterize(pdf, list(range(1, 9)), Path(tmp) / "scan.pdf")
        db = open_db(Path(tmp) / "bench.db")
        seen: list[float] = []
        start = time.perf_counter()
        ingest_path(db, scan, workers=2, progress=lambda done, total: seen.append(time.perf_counter() - start))
    return {"pages": len(seen), "first_page_ready_s": round(seen[0], 2), "all_pages_s": round(seen[-1], 2),
            "target_first_page_s": 15}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="one OCR setting only")
    args = parser.parse_args()
    pdfs = sorted((DATA / "studio_pdfs" / "pdf").glob("*.pdf"))
    if not pdfs:
        sys.exit(f"no studio PDFs under {DATA}; set SCRIPTLABEL_SHARED_DATA")
    report = {"text_layer": text_layer_speed(pdfs), "ocr": ocr_runs(args.quick), "first_page": first_page_latency()}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
