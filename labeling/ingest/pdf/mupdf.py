"""PyMuPDF, imported without its optional layout model.

pymupdf 2 imports `pymupdf.layout` when it is installed (a dependency since 2.0), which loads an ONNX
document-layout model: 1.3 s of CPU on every import, i.e. in every CLI run and every OCR worker, for a
feature scriptlabel never calls (it reads words and assembles lines itself). Marking the module absent
makes pymupdf skip it, as it does where the package is not installed.
"""

from __future__ import annotations

import sys

sys.modules.setdefault("pymupdf.layout", None)  # type: ignore[arg-type]

import pymupdf  # noqa: E402

__all__ = ["pymupdf"]
