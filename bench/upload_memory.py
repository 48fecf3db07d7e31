"""A large scan uploaded through the app and ingested: peak memory of the app server's whole process tree.

    nice -n 15 uv run python bench/upload_memory.py [--pages 120] [--dpi 300] [--quality 95] [--keep PATH]

Studio PDF pages (`../shared/data`, several scripts in turn) are rasterized at `--dpi` with scanner
noise (grey paper, sigma 10) and saved as a JPEG-in-PDF scan (`--quality`; 120 pages at 300 dpi and 95
make about 400 MB: real scans do not compress either). The app server (`streamlit run app_server.py` on
a fresh database, single-user on loopback, default limits and workers) is started, the scan is sent to
its upload route (POST /api/upload, the request the Scripts page's uploader makes, body streamed from
the file) and the background ingest (job, OCR workers, loaded tesseract engines) is waited for. The
memory of every process under the server is summed every 0.1 s: proportional set size (a page shared by
n processes counts 1/n in each: the tree's real footprint), and the plain resident sizes (an upper
bound: forked workers share their parent's pages, counted again in each). The scan is written to a temporary folder and removed (never
commit it).

Prints JSON on stdout: scan size and pages, upload seconds, ingest seconds, peak tree and server-alone
memory (MB) during the upload and during the ingest, the job's outcome, lines stored, pages flagged.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import sqlite3
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from ocr_accuracy import DATA  # noqa: E402  (bench/ is on the path when run as a script)

SCRIPTS = ["mr-right", "dirk-gently-102-lost-and-found", "me-him-her", "suits-pilot", "lunch-with-john"]


def build_scan(path: Path, pages: int, dpi: int, quality: int) -> Path:
    """`pages` studio pages with scanner noise, one JPEG image a page, written page by page (lazily)."""
    import numpy as np
    from PIL import Image

    from labeling.ingest.pdf.mupdf import pymupdf

    rng = np.random.default_rng(0)
    docs = [pymupdf.open(DATA / "studio_pdfs" / "pdf" / f"{slug}.pdf") for slug in SCRIPTS]

    def page(k: int):
        doc = docs[k % len(docs)]
        pix = doc[1 + (k // len(docs)) % (doc.page_count - 1)].get_pixmap(dpi=dpi, colorspace=pymupdf.csGRAY)
        pixels = np.frombuffer(pix.samples, dtype=np.uint8).reshape(pix.height, pix.width).astype(np.float32)
        noisy = np.clip(pixels * 0.93 + 12 + rng.normal(0, 10, pixels.shape), 0, 255).astype(np.uint8)
        return Image.fromarray(noisy)

    first = page(0)
    first.save(path, save_all=True, append_images=(page(k) for k in range(1, pages)), resolution=dpi,
               quality=quality)
    return path


class TreeMemory:
    """Peak resident memory of a process and all its descendants, sampled every 0.1 s."""

    def __init__(self, pid: int):
        import psutil

        self.root = psutil.Process(pid)
        self.peak_tree = self.peak_root = self.peak_rss_sum = 0
        self.phase_peaks: dict[str, int] = {}
        self.phase = "idle"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        import psutil

        while not self._stop.is_set():
            total = rss_sum = 0
            try:
                procs = [self.root, *self.root.children(recursive=True)]
            except psutil.Error:
                return
            for proc in procs:
                try:
                    info = proc.memory_full_info()
                except psutil.Error:
                    continue
                total += info.pss
                rss_sum += info.rss
                if proc.pid == self.root.pid:
                    self.peak_root = max(self.peak_root, info.pss)
            self.peak_tree = max(self.peak_tree, total)
            self.peak_rss_sum = max(self.peak_rss_sum, rss_sum)
            self.phase_peaks[self.phase] = max(self.phase_peaks.get(self.phase, 0), total)
            time.sleep(0.1)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def upload(port: int, path: Path, database: str) -> tuple[int, dict]:
    params = urllib.parse.urlencode({"name": path.name, "database": database, "client_id": "bench-1"})
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    with path.open("rb") as body:  # http.client sends a file in blocks: the bench holds no copy either
        conn.request("POST", f"/api/upload?{params}", body=body,
                     headers={"X-Scriptlabel": "1", "Content-Type": "application/octet-stream",
                              "Content-Length": str(path.stat().st_size)})
    response = conn.getresponse()
    answer = json.loads(response.read() or b"{}")
    conn.close()
    return response.status, answer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pages", type=int, default=120)
    parser.add_argument("--dpi", type=int, default=300)
    parser.add_argument("--quality", type=int, default=95, help="JPEG quality of the scan's page images")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds to wait for the ingest")
    args = parser.parse_args()
    if not (DATA / "studio_pdfs").exists():
        raise SystemExit(f"{DATA / 'studio_pdfs'}: not found; this bench needs ../shared/data")
    from browser_support import App

    from store.db import database_uid, open_db

    with tempfile.TemporaryDirectory(prefix="scriptlabel-upload-bench-") as tmp:
        tmp = Path(tmp)
        started = time.perf_counter()
        scan = build_scan(tmp / "large-scan.pdf", args.pages, args.dpi, args.quality)
        report: dict = {"pages": args.pages, "dpi": args.dpi, "mb": round(scan.stat().st_size / 2**20, 1),
                        "build_s": round(time.perf_counter() - started, 1)}
        print(json.dumps(report), file=sys.stderr, flush=True)
        db_path = tmp / "app.db"
        database = database_uid(open_db(db_path))
        app = App(db_path, tmp / "streamlit.log", env={"OMP_THREAD_LIMIT": "1"})
        memory = TreeMemory(app.proc.pid)
        try:
            time.sleep(1.0)
            report["server_idle_mb"] = round(memory.peak_tree / 2**20)
            memory.phase = "upload"
            t0 = time.perf_counter()
            status, answer = upload(app.port, scan, database)
            report["upload_s"] = round(time.perf_counter() - t0, 1)
            report["upload_status"] = status
            if status != 200:
                report["error"] = answer.get("error")
            else:
                memory.phase = "ingest"
                t0 = time.perf_counter()
                while True:
                    with sqlite3.connect(db_path) as conn:
                        row = conn.execute("SELECT status, error, pages_done, pages_total FROM ingest_jobs "
                                           "WHERE job_id = ?", [answer["job_id"]]).fetchone()
                    if row[0] in ("done", "failed") or time.perf_counter() - t0 > args.timeout:
                        break
                    time.sleep(1.0)
                report["ingest_s"] = round(time.perf_counter() - t0, 1)
                report["job"] = {"status": row[0], "error": row[1], "pages_done": row[2], "pages_total": row[3]}
                with sqlite3.connect(db_path) as conn:
                    report["lines"] = conn.execute("SELECT COUNT(*) FROM lines").fetchone()[0]
                    report["flagged_pages"] = conn.execute("SELECT COUNT(*) FROM pages WHERE flag IS NOT NULL"
                                                           ).fetchone()[0]
        finally:
            memory.stop()
            app.stop()
        report["peak_tree_mb"] = round(memory.peak_tree / 2**20)  # proportional set size: shared pages split
        report["peak_tree_rss_sum_mb"] = round(memory.peak_rss_sum / 2**20)  # shared pages once per process
        report["peak_server_alone_mb"] = round(memory.peak_root / 2**20)
        report["peak_tree_mb_by_phase"] = {k: round(v / 2**20) for k, v in memory.phase_peaks.items()}
        report["target_peak_tree_mb"] = 1024
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    os.environ.setdefault("OMP_THREAD_LIMIT", "1")
    main()
