"""OCR on a Dask cluster: pages are rendered and read on the cluster's workers, the store stays here.

The PDF goes to the workers once (scattered as bytes: a worker on another machine cannot read our
paths); each page is one task that renders it with poppler, reads it with tesseract and sends back the
lines and a small PNG for the crops. Results are yielded in page order, so the caller writes pages
into the one SQLite store exactly as it does for local OCR.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from labeling.ingest.pdf.layout import PageLine
from labeling.ingest.pdf.ocr import DEFAULT_DPI, OcrPage, read_document_page
from store.types import ScriptlabelError


class ClusterError(ScriptlabelError):
    pass


@dataclass(frozen=True)
class RemotePage:
    """What a worker sends back for one page: the lines in points and a PNG for the app's crops."""

    page: int
    width: float
    height: float
    lines: list[PageLine]
    png: bytes | None
    flag: str | None = None
    note: str = ""


def ocr_page_from_bytes(pdf: bytes, page: int, dpi: int = DEFAULT_DPI, keep_image: bool = True,
                        timeout_s: float = 0) -> RemotePage:
    """Render one page (1-based) of a PDF given as bytes and OCR it (flagged when it gives no lines, as
    locally). Runs on a Dask worker."""
    from labeling.ingest.pdf.mupdf import pymupdf

    os.environ["OMP_THREAD_LIMIT"] = "1"  # one tesseract thread per task: the cluster parallelizes pages
    with pymupdf.open(stream=pdf, filetype="pdf") as doc:
        result, small = read_document_page(doc, page, dpi=dpi, timeout_s=timeout_s)
    png = None
    if keep_image and small is not None:
        buffer = io.BytesIO()
        small.save(buffer, format="PNG")
        png = buffer.getvalue()
    return RemotePage(page=page, width=result.width, height=result.height, lines=result.lines, png=png,
                      flag=result.flag, note=result.note)


def connect(scheduler: str, *, timeout_s: float = 20):
    """A Dask client for `scheduler` (tcp://HOST:PORT); a clear message when it cannot be reached."""
    try:
        from distributed import Client
    except ImportError as exc:  # pragma: no cover - a dependency of the project
        raise ClusterError("Dask distributed is not installed; run ./setup.sh again") from exc
    try:
        return Client(scheduler, timeout=timeout_s)
    except (OSError, TimeoutError) as exc:
        raise ClusterError(f"cannot reach the Dask scheduler at {scheduler} ({exc}); check the address and that "
                           "`dask scheduler` runs there, or ingest without --scheduler") from exc


def iter_cluster_ocr_pages(
    pdf_path: str | Path,
    pages: list[int],
    *,
    scheduler: str,
    dpi: int = DEFAULT_DPI,
    image_dir: str | Path | None = None,
    progress: Callable[[int, int], None] | None = None,
    client=None,
    timeout_s: float = 0,
) -> Iterator[OcrPage]:
    """OCR `pages` on the cluster, yielding them in page order; page images are written here."""
    own = client is None
    client = client or connect(scheduler)
    try:
        data = client.scatter(Path(pdf_path).read_bytes(), broadcast=False)
        keep = image_dir is not None
        futures = [client.submit(ocr_page_from_bytes, data, page, dpi, keep, timeout_s, pure=False, key=f"ocr-{page}-{os.getpid()}")
                   for page in pages]
        try:
            for done, future in enumerate(futures, 1):
                try:
                    remote: RemotePage = future.result()
                except ScriptlabelError:
                    raise
                except Exception as exc:  # a worker failed on this page (damaged page, worker lost)
                    raise ClusterError(f"{pdf_path}: OCR of page {future.key.split('-')[1]} failed on the cluster "
                                       f"({type(exc).__name__}: {exc}); ingest again or without --scheduler") from exc
                image_path = None
                if keep and remote.png is not None:
                    Path(image_dir).mkdir(parents=True, exist_ok=True)
                    image_path = str(Path(image_dir) / f"page-{remote.page:04d}.png")
                    Path(image_path).write_bytes(remote.png)
                if progress:
                    progress(done, len(pages))
                yield OcrPage(page=remote.page, width=remote.width, height=remote.height, lines=remote.lines,
                              image_path=image_path, flag=remote.flag, note=remote.note, dpi=dpi)
        finally:
            client.cancel(futures)
    finally:
        if own:
            client.close()
