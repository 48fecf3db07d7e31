"""The shipped-model build's out-of-fold export (`--oof-out`) and its guard against writing into the repo."""

import numpy as np
import pytest

from labeling.corpus.build_pretrained import REPO, check_outside_repo, main, write_oof
from models.lines.classifier import make_line_classifier
from store.types import LABELS, ScriptlabelError
from test_line_classifier import FAST, make_scripts


def test_oof_export_has_probabilities_codes_and_scripts_but_no_text(tmp_path):
    X, y = make_scripts(n_scripts=6, repeats=2)
    y = [label if i % 7 else None for i, label in enumerate(y)]  # some context-only lines
    model = make_line_classifier(FAST, n_jobs=1).fit(X, y, keep_oof=True)
    path = tmp_path / "oof"  # no suffix: written exactly where asked
    summary = write_oof(path, model, X, y, np.ones(len(X), dtype=np.float32))
    with np.load(path, allow_pickle=False) as data:
        assert set(data.files) == {"proba", "code", "script_id", "group", "fold", "weight", "labels"}
        n = sum(label is not None for label in y)
        assert data["proba"].shape == (n, len(LABELS))
        np.testing.assert_allclose(data["proba"].sum(axis=1), 1.0, rtol=1e-4)
        assert list(data["labels"]) == list(LABELS)
        assert [LABELS[c] for c in data["code"]] == [label for label in y if label is not None]
        # Whole scripts per fold: a script's lines never sit in two folds.
        for sid in np.unique(data["script_id"]):
            assert len(np.unique(data["fold"][data["script_id"] == sid])) == 1
        assert len(np.unique(data["fold"])) == FAST.inner_folds
        assert not any(isinstance(v, str) and "Mara" in v for v in data["script_id"])
    assert summary["lines"] == n and 0.0 <= summary["accuracy"] <= 1.0


def test_oof_export_refuses_the_repository(tmp_path, capsys):
    with pytest.raises(ScriptlabelError, match="inside the repository"):
        check_outside_repo(REPO / "oof.npz")
    check_outside_repo(tmp_path / "oof.npz")  # anywhere else is fine
    assert main(["--oof-out", str(REPO / "models" / "oof.npz"), "--no-cv", "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --oof-out") and "inside the repository" in err and "Traceback" not in err
