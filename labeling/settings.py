"""One settings object, built from flags and the environment at each entry point (the CLI, the app's
server, the training worker) and passed down; nothing below reads the environment for these.

`Settings.from_env(os.environ)` reads SCRIPTLABEL_DB, SCRIPTLABEL_SAMPLE, SCRIPTLABEL_RETRAIN_EVERY,
SCRIPTLABEL_RATE_RETRAIN_EVERY, the limits SCRIPTLABEL_MAX_UPLOAD_MB (1024), SCRIPTLABEL_MAX_PAGES (600),
SCRIPTLABEL_MAX_TEXT_LINES (50000), SCRIPTLABEL_OCR_SECONDS_PER_PAGE (60 s of processor time; past it a page is stored flagged "timed out"), SCRIPTLABEL_SESSION_HOURS (12,
how long a sign-in lasts) and SCRIPTLABEL_AUTO_COMPLEXITY_MODELS (baselines: what rating-triggered
complexity runs compare; `all` adds the BiLSTMs) and SCRIPTLABEL_WARM_WORKER_S (120: how long a line
training worker waits, models loaded, for the next line run; 0 = it exits after its run).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from store.db import DEFAULT_DB

if TYPE_CHECKING:  # the ingest pipeline loads PyMuPDF: only commands that ingest pay for it
    from labeling.ingest.pipeline import IngestLimits

SAMPLE_PDF = Path(__file__).resolve().parents[1] / "sample_scripts" / "tim_time.pdf"
MODEL_SETS = ("all", "baselines")  # complexity runs: the BiLSTMs too (minutes), or the fast models (seconds)

# XGBoost's OpenMP threads (its bundled libgomp) spin 300,000 times before they sleep. With a second
# training run, an OCR ingest or the app busy on the same two cores, that spinning turns a 0.4 s adapter
# retrain into 20–30 s; spinning 10,000 times keeps it under 1 s and costs nothing on a quiet machine
# (measured: 0.35 s either way). libgomp reads it when it loads, so each entry point sets it first
# (`process_defaults`), before anything imports xgboost; the training worker gets it in its environment.
GOMP_SPINCOUNT = "10000"
# Keras picks its backend when it is first imported: JAX, the only one installed.
KERAS_BACKEND = "jax"


@dataclass(frozen=True)
class Settings:
    db_path: Path
    load_sample: bool = True
    sample_path: Path = SAMPLE_PDF
    retrain_every: int = 10
    batch_size: int = 20
    rate_retrain_every: int = 5  # new ratings in a department before its complexity models retrain (0 = never)
    max_upload_mb: int = 1024      # also Streamlit's server.maxUploadSize (serve passes it); scans: 3-4 MB a page
    max_pages: int = 600
    max_text_lines: int = 50_000
    ocr_seconds_per_page: int = 60
    session_ttl_s: float = 12 * 3600
    auto_complexity_models: str = "baselines"  # what rating-triggered complexity runs compare
    # After a line-model run the worker stays this long, models loaded, for the next one (0 = exit at once).
    warm_worker_s: int = 120

    @property
    def ingest_limits(self) -> "IngestLimits":
        from labeling.ingest.pipeline import IngestLimits

        return IngestLimits(max_bytes=self.max_upload_mb * 1024 * 1024, max_pages=self.max_pages,
                            max_text_lines=self.max_text_lines, ocr_seconds_per_page=self.ocr_seconds_per_page)

    @classmethod
    def from_env(cls, env: Mapping[str, str], **overrides) -> "Settings":
        """The settings from an environment (see the module's docstring); `overrides` win (e.g. flags)."""
        every = env.get("SCRIPTLABEL_RETRAIN_EVERY", "")
        rate_every = env.get("SCRIPTLABEL_RATE_RETRAIN_EVERY", "")
        auto_models = env.get("SCRIPTLABEL_AUTO_COMPLEXITY_MODELS", "baselines")
        values = dict(
            db_path=Path(env.get("SCRIPTLABEL_DB") or DEFAULT_DB),
            load_sample=env.get("SCRIPTLABEL_SAMPLE", "1") != "0",
            retrain_every=int(every) if every.strip().isdigit() else 10,
            rate_retrain_every=int(rate_every) if rate_every.strip().isdigit() else 5,
            max_upload_mb=_positive(env, "SCRIPTLABEL_MAX_UPLOAD_MB", 1024),
            max_pages=_positive(env, "SCRIPTLABEL_MAX_PAGES", 600),
            max_text_lines=_positive(env, "SCRIPTLABEL_MAX_TEXT_LINES", 50_000),
            ocr_seconds_per_page=_positive(env, "SCRIPTLABEL_OCR_SECONDS_PER_PAGE", 60),
            session_ttl_s=3600.0 * _positive(env, "SCRIPTLABEL_SESSION_HOURS", 12),
            auto_complexity_models=auto_models if auto_models in MODEL_SETS else "baselines",
            warm_worker_s=_non_negative(env, "SCRIPTLABEL_WARM_WORKER_S", 120),
        )
        return cls(**{**values, **overrides})


def _non_negative(env: Mapping[str, str], name: str, default: int) -> int:
    value = env.get(name, "").strip()
    return int(value) if value.isdigit() else default


def _positive(env: Mapping[str, str], name: str, default: int) -> int:
    value = env.get(name, "").strip()
    return int(value) if value.isdigit() and int(value) > 0 else default


def process_defaults(env: MutableMapping[str, str] | None = None) -> MutableMapping[str, str]:
    """What every scriptlabel process needs before its first heavy import (Keras' backend, libgomp's spin
    count), set where not set already. An entry point calls it on `os.environ` first thing; passed a copy,
    it prepares a child's environment. Returns the environment."""
    env = os.environ if env is None else env
    env.setdefault("KERAS_BACKEND", KERAS_BACKEND)
    env.setdefault("GOMP_SPINCOUNT", GOMP_SPINCOUNT)
    return env
