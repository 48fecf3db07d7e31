"""The active-learning bench's summaries (bench/active_learning.py), on made-up curves."""

import importlib.util
import math
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "active_learning.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("active_learning_bench", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def curve(*accuracies):
    return [{"labels": 10 * k, "accuracy": a} for k, a in enumerate(accuracies)]


def test_labels_to_reach_is_the_first_retrain_at_or_above_the_target(bench):
    c = curve(0.98, 0.9899, 0.9901, 0.985, 0.999)
    assert bench.labels_to_reach(c, 0.99) == 20
    assert bench.labels_to_reach(c, 0.995) == 40
    assert bench.labels_to_reach(c, 0.9999) is None


def test_mean_error_is_the_area_over_the_curve_from_10_to_50_labels(bench):
    c = curve(0.5, 0.99, 0.99, 0.98, 1.0, 0.99, 0.0)  # the base (0 labels) and 60 labels do not count
    assert bench.mean_error(c) == pytest.approx((0.01 + 0.01 + 0.02 + 0.0 + 0.01) / 5)
    assert math.isnan(bench.mean_error(curve(0.9)))


def test_overall_sums_labels_to_0_99_and_counts_a_miss_as_the_budget_plus_a_batch(bench):
    def entry(c):
        summary = {"after_50": c[5]["accuracy"], "labels_to_0.99": bench.labels_to_reach(c, 0.99),
                   "mean_error_10_50": bench.mean_error(c),
                   "patterns": {"pattern_labels": 2, "repeat_pattern_labels": 1, "max_per_pattern": 2}}
        return {"summary": {"margin": summary}, "curves": {"margin": c}}

    scripts = {"a": entry(curve(0.98, 0.99, 0.995, 0.996, 0.997, 0.998)),
               "b": entry(curve(0.97, 0.975, 0.98, 0.985, 0.986, 0.987))}
    out = bench.overall(scripts, ["margin"])["margin"]
    assert out["labels_to_0.99_sum"] == 10 + 60 and out["reached_0.99"] == 1
    assert out["after_50_min"] == 0.987 and out["after_50_mean"] == pytest.approx(0.9925)
    assert out["mean_error_10_50"] == pytest.approx((0.0048 + 0.0174) / 2, abs=1e-5)
    assert out["pattern_labels"] == 4 and out["repeat_pattern_labels"] == 2
