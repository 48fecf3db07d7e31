"""labeling/settings.py: one settings object from the environment at each entry point."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from labeling.settings import GOMP_SPINCOUNT, Settings, process_defaults

REPO = Path(__file__).resolve().parents[1]


def test_settings_come_from_the_environment(tmp_path):
    s = Settings.from_env({"SCRIPTLABEL_DB": str(tmp_path / "x.db"), "SCRIPTLABEL_SAMPLE": "0"})
    assert s.db_path == tmp_path / "x.db" and s.load_sample is False and s.retrain_every == 10
    s = Settings.from_env({"SCRIPTLABEL_RETRAIN_EVERY": "25"})
    assert s.load_sample is True and s.retrain_every == 25 and s.db_path.name == "scriptlabel.db"


def test_the_complexity_model_set_of_rating_runs_is_a_setting():
    assert Settings.from_env({}).auto_complexity_models == "baselines"
    assert Settings.from_env({"SCRIPTLABEL_AUTO_COMPLEXITY_MODELS": "all"}).auto_complexity_models == "all"
    assert Settings.from_env({"SCRIPTLABEL_AUTO_COMPLEXITY_MODELS": "bogus"}).auto_complexity_models == "baselines"


def test_flags_override_the_environment(tmp_path):
    s = Settings.from_env({"SCRIPTLABEL_DB": "elsewhere.db"}, db_path=tmp_path / "flag.db", load_sample=False)
    assert s.db_path == tmp_path / "flag.db" and s.load_sample is False


def test_process_defaults_fill_in_only_what_is_missing():
    env = process_defaults({"GOMP_SPINCOUNT": "5"})
    assert env == {"GOMP_SPINCOUNT": "5", "KERAS_BACKEND": "jax"}
    assert process_defaults({})["GOMP_SPINCOUNT"] == GOMP_SPINCOUNT


def test_importing_the_packages_sets_no_environment_variable():
    """Nothing of ours is set at import time (libraries may set their own): the entry points set what their
    process needs."""
    code = ("import os; before = dict(os.environ); "
            "import models, models.lines.classifier, models.complexity.evaluation, labeling.training.worker, "
            "labeling.training.runs, labeling.cli, labeling.settings, store.db; "
            "print(sorted(k for k in os.environ if os.environ.get(k) != before.get(k) "
            "and k.startswith(('SCRIPTLABEL_', 'KERAS_', 'GOMP_', 'OMP_', 'JAX_'))))")
    env = {k: v for k, v in os.environ.items() if k not in ("KERAS_BACKEND", "GOMP_SPINCOUNT")}
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
