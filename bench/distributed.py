"""Dask on this machine: OCR of 60 scanned pages and a base line-model fit, LocalCluster vs in-process.

    uv run python bench/distributed.py [--pages 60] [--dpi 200] [--movies 8]

Prints one JSON object. A `LocalCluster` of 2 worker processes (1 thread each) stands in for a real
cluster: on the same 2 cores it measures the overhead of going through a scheduler (scattering the
PDF, one task per page; xgboost.dask's data-parallel boosting), not a speed-up, which needs more
machines. Pages are rasterized from a real studio PDF (../shared/data), so the OCR reads real layouts.
The model fit uses MovieParse movies (`--movies`) with the shipped model's configuration.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_THREAD_LIMIT", "1")
REPO = Path(__file__).resolve().parents[1]
# This file is named like the Dask package it measures: keep its own folder off the import path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(REPO))
from labeling.settings import process_defaults  # noqa: E402

process_defaults()  # an entry point: libgomp's spin count (and Keras' backend) before xgboost loads

PDF = "studio_pdfs/pdf/suits-pilot.pdf"


def scanned(pdf: Path, pages: int, dpi: int, out: Path) -> Path:
    from pdf2image import convert_from_path

    images = convert_from_path(str(pdf), dpi=dpi, grayscale=True, first_page=1, last_page=pages)
    images[0].save(out, save_all=True, append_images=images[1:], resolution=dpi)
    return out


def ocr_times(scan: Path, pages: int, dpi: int, scheduler: str, folder: Path) -> dict:
    from labeling.ingest.pdf.cluster import iter_cluster_ocr_pages
    from labeling.ingest.pdf.ocr import iter_ocr_pages

    numbers = list(range(1, pages + 1))
    started = time.perf_counter()
    here = list(iter_ocr_pages(scan, numbers, dpi=dpi, workers=2, image_dir=folder / "here"))
    local_s = time.perf_counter() - started
    started = time.perf_counter()
    remote = list(iter_cluster_ocr_pages(scan, numbers, scheduler=scheduler, dpi=dpi, image_dir=folder / "cluster"))
    cluster_s = time.perf_counter() - started
    same = sum(a.lines == b.lines for a, b in zip(here, remote))
    return {"pages": pages, "in_process_2_workers_s": round(local_s, 1), "cluster_s": round(cluster_s, 1),
            "speedup": round(local_s / cluster_s, 2), "pages_read_identically": same}


def fit_times(data: Path, movies: int, scheduler: str) -> dict:
    from distributed import Client

    from labeling.corpus.build_pretrained import training_frame
    from labeling.corpus.sources import load_movieparse
    from models.lines.classifier import LineModelConfig, fit_base

    subset = {"movieparse": load_movieparse(data)[:movies], "studio_pdfs": [], "fountain_samples": []}
    X, y, w = training_frame(subset)
    started = time.perf_counter()
    fit_base(X, y, sample_weight=w, config=LineModelConfig())
    local_s = time.perf_counter() - started
    with Client(scheduler) as client:
        started = time.perf_counter()
        fit_base(X, y, sample_weight=w, config=LineModelConfig(), client=client)
        cluster_s = time.perf_counter() - started
    return {"lines": int(len(X)), "movies": movies, "in_process_s": round(local_s, 1),
            "xgboost_dask_s": round(cluster_s, 1), "speedup": round(local_s / cluster_s, 2)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=60)
    parser.add_argument("--dpi", type=int, default=200)
    parser.add_argument("--movies", type=int, default=8)
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "data"))
    args = parser.parse_args(argv)
    from distributed import LocalCluster

    data = Path(args.data)
    if not (data / PDF).exists():
        print(f"error: {data / PDF} not found; pass --data pointing at the shared data folder", file=sys.stderr)
        return 2
    report: dict = {"cluster": "LocalCluster, 2 worker processes x 1 thread, on the same 2 cores"}
    with tempfile.TemporaryDirectory() as tmp, LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                                            dashboard_address=None, host="127.0.0.1") as cluster:
        folder = Path(tmp)
        scan = scanned(data / PDF, args.pages, args.dpi, folder / "scan.pdf")
        report["ocr"] = ocr_times(scan, args.pages, args.dpi, cluster.scheduler_address, folder)
        print(json.dumps(report["ocr"]), file=sys.stderr, flush=True)
        report["base_model_fit"] = fit_times(data, args.movies, cluster.scheduler_address)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
