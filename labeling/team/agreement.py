"""Agreement between people who labeled the same lines (and rated the same sequences) on their own.

- per pair: Cohen's κ (scikit-learn) with n and a bootstrap 95% interval (lines resampled);
- per class: κ of "this label or not" over every pair's comparisons, with n (comparisons where either
  person gave the label) and an interval;
- all people at once: Krippendorff's α (the `krippendorff` package; nominal for lines, ordinal for
  ratings), which handles any number of people and lines some of them skipped;
- per script, over time (by the day of the later label) and each person against the adjudicated labels.

A κ (or α) where everyone gave one label throughout is 1.0: chance agreement is certain there, so the
formula is 0/0, and the people never disagreed. Adjudicated labels are the lead's, never a person's vote.
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass, field
from itertools import combinations

import numpy as np
import pandas as pd
from sqlite_utils import Database

from store import scripts as script_store
from store import team as team_store
from store.types import LABELS

RESAMPLES = 1000
ALPHA_RESAMPLES = 1000
MIN_FOR_INTERVAL = 5  # fewer units than this: no interval (it would say nothing)


def cohen_kappa(a, b) -> float:
    """Cohen's κ of two people's labels on the same items (1.0 when one label is all either ever gave and
    both gave it; NaN for no items)."""
    a, b = list(a), list(b)
    if len(a) != len(b) or not a:
        return float("nan")
    if len(set(a) | set(b)) == 1:
        return 1.0
    from sklearn.metrics import cohen_kappa_score

    return float(cohen_kappa_score(a, b))


def _kappa_codes(x: np.ndarray, y: np.ndarray, k: int) -> float:
    """κ from integer codes 0..k-1, the same formula as scikit-learn's (the bootstrap's, on one table)."""
    table = np.bincount(x * k + y, minlength=k * k).reshape(1, k, k).astype(float)
    return float(_kappa_from_tables(table)[0])


@functools.lru_cache(maxsize=4)
def _draws(n: int, resamples: int, seed: int) -> np.ndarray:
    """The items each bootstrap resample draws: (resamples, n) indices, read-only (shared by the pairs and
    classes of one report: the same resamples of the same comparisons)."""
    draws = np.random.default_rng(seed).integers(0, n, size=(resamples, n))
    draws.flags.writeable = False
    return draws


def _resampled_counts(codes: np.ndarray, size: int, resamples: int, seed: int) -> np.ndarray:
    """How often each code 0..size-1 occurs among each resample's drawn items: (resamples, size)."""
    drawn = codes[_draws(len(codes), resamples, seed)]
    offsets = (np.arange(resamples) * size)[:, None]
    return np.bincount((drawn + offsets).ravel(), minlength=resamples * size).reshape(resamples, size).astype(float)


def _kappa_from_tables(tables: np.ndarray) -> np.ndarray:
    """κ of each (k, k) confusion table of counts in a (resamples, k, k) stack (1.0 where p_e = 1)."""
    tables = tables / tables.sum(axis=(1, 2), keepdims=True)
    observed = np.trace(tables, axis1=1, axis2=2)
    expected = np.einsum("bi,bi->b", tables.sum(axis=2), tables.sum(axis=1))
    sure = expected >= 1.0 - 1e-12
    return np.where(sure, 1.0, (observed - expected) / np.where(sure, 1.0, 1.0 - expected))


def kappa_interval(a, b, *, resamples: int = RESAMPLES, seed: int = 0) -> tuple[float, float] | None:
    """Percentile bootstrap 95% interval of κ, resampling the items; None below MIN_FOR_INTERVAL items.
    All resamples at once: each item's cell of the confusion table, weighted by how often it was drawn."""
    if len(a) < MIN_FOR_INTERVAL:
        return None
    values, codes = np.unique(np.concatenate([np.asarray(a, dtype=object), np.asarray(b, dtype=object)]).astype(str),
                              return_inverse=True)
    k = len(values)
    x, y = codes[:len(a)], codes[len(a):]
    tables = _resampled_counts(x * k + y, k * k, resamples, seed).reshape(resamples, k, k)
    low, high = np.percentile(_kappa_from_tables(tables), [2.5, 97.5])
    return round(float(low), 4), round(float(high), 4)


def unit_coincidences(matrix: np.ndarray) -> np.ndarray:
    """Krippendorff's coincidences of each item (people × items matrix of codes 0..k-1, NaN = not labeled):
    (items, k, k), item u adding (pairs of its values c, k) / (m_u − 1); items with fewer than 2 values add 0."""
    matrix = np.asarray(matrix, dtype=float)
    k = int(np.nanmax(matrix)) + 1 if np.isfinite(matrix).any() else 1
    counts = np.stack([(matrix == c).sum(axis=0) for c in range(k)], axis=1).astype(float)  # items × k
    m = counts.sum(axis=1)
    pairs = counts[:, :, None] * counts[:, None, :] - np.einsum("uc,ck->uck", counts, np.eye(k))
    scale = np.where(m >= 2, 1.0 / np.maximum(m - 1, 1), 0.0)
    return pairs * scale[:, None, None]


def _nominal_alpha_from(coincidences: np.ndarray) -> np.ndarray:
    """Nominal α of each (k, k) coincidence matrix in a stack: 1 − D_o / D_e."""
    n_c = coincidences.sum(axis=2)
    n = n_c.sum(axis=1)
    observed = n - np.trace(coincidences, axis1=1, axis2=2)
    expected = (n ** 2 - (n_c ** 2).sum(axis=1)) / np.maximum(n - 1, 1)
    return np.where(expected > 0, 1.0 - observed / np.where(expected > 0, expected, 1.0), 1.0)


def krippendorff_alpha(matrix: np.ndarray, *, level: str = "nominal") -> float | None:
    """α over a people × items matrix of codes (NaN where a person did not label the item); None without
    an item two people labeled; 1.0 when only one value occurs."""
    import krippendorff

    matrix = np.asarray(matrix, dtype=float)
    if matrix.size == 0:
        return None
    matrix = matrix[:, (~np.isnan(matrix)).sum(axis=0) >= 2]
    if matrix.shape[1] == 0:
        return None
    if len(np.unique(matrix[~np.isnan(matrix)])) == 1:
        return 1.0
    return float(krippendorff.alpha(reliability_data=matrix, level_of_measurement=level))


def alpha_interval(matrix: np.ndarray, *, resamples: int = ALPHA_RESAMPLES, seed: int = 0
                   ) -> tuple[float, float] | None:
    """Percentile bootstrap 95% interval of nominal α, resampling the items (all resamples at once from
    each item's coincidences; tests/test_team.py checks the formula against the krippendorff package)."""
    matrix = np.asarray(matrix, dtype=float)
    matrix = matrix[:, (~np.isnan(matrix)).sum(axis=0) >= 2] if matrix.size else matrix
    if matrix.size == 0 or matrix.shape[1] < MIN_FOR_INTERVAL:
        return None
    per_item = unit_coincidences(matrix)
    k = per_item.shape[1]
    weights = _resampled_counts(np.arange(len(per_item)), len(per_item), resamples, seed)
    stacks = weights @ per_item.reshape(len(per_item), k * k)
    low, high = np.percentile(_nominal_alpha_from(stacks.reshape(resamples, k, k)), [2.5, 97.5])
    return round(float(low), 4), round(float(high), 4)


def _r(value) -> float | None:
    return None if value is None or not np.isfinite(value) else round(float(value), 4)


@dataclass(frozen=True)
class PairAgreement:
    a: str
    b: str
    n: int
    agreement: float  # share of lines with the same label
    kappa: float | None
    ci95: tuple[float, float] | None = None


@dataclass(frozen=True)
class ClassAgreement:
    n: int
    kappa: float | None
    ci95: tuple[float, float] | None = None


@dataclass
class AgreementReport:
    lines_overlapped: int  # lines with labels from two people or more
    people: list[str]
    pairs: list[PairAgreement]
    per_class: dict[str, ClassAgreement]
    kappa: float | None  # every pair's comparisons pooled
    alpha: float | None
    alpha_ci95: tuple[float, float] | None
    disagreements: int  # overlapped lines where people gave different labels
    adjudicated: int  # of those, settled by a lead
    per_script: list[dict] = field(default_factory=list)
    over_time: list[dict] = field(default_factory=list)
    versus_adjudicated: list[dict] = field(default_factory=list)
    ratings: dict[str, dict] = field(default_factory=dict)

    def as_json(self) -> dict:
        out = asdict(self)
        out["pairs"] = [asdict(p) for p in self.pairs]
        out["per_class"] = {label: asdict(c) for label, c in self.per_class.items()}
        return out


def _comparisons(wide: pd.DataFrame, stamps: pd.DataFrame) -> pd.DataFrame:
    """One row per (pair, line) both labeled: a, b, line_id, la, lb, at (the later label's time)."""
    parts = []
    for a, b in combinations(list(wide.columns), 2):
        both = wide[[a, b]].dropna()
        if both.empty:
            continue
        sa, sb = stamps.loc[both.index, a].to_numpy(dtype=str), stamps.loc[both.index, b].to_numpy(dtype=str)
        parts.append(pd.DataFrame({"a": a, "b": b, "line_id": both.index.astype(int), "la": both[a].to_numpy(),
                                   "lb": both[b].to_numpy(), "at": np.where(sa > sb, sa, sb)}))
    columns = ["a", "b", "line_id", "la", "lb", "at"]
    return pd.concat(parts, ignore_index=True)[columns] if parts else pd.DataFrame(columns=columns)


def _pooled(comparisons: pd.DataFrame) -> float | None:
    return _r(cohen_kappa(comparisons["la"], comparisons["lb"])) if len(comparisons) else None


def _alpha_matrix(wide: pd.DataFrame, values: list) -> np.ndarray:
    code = {v: i for i, v in enumerate(values)}
    return np.array([[code[v] if isinstance(v, str) or pd.notna(v) else np.nan for v in wide[c]]
                     for c in wide.columns], dtype=float)


def _per_class(comparisons: pd.DataFrame, *, intervals: bool, resamples: int = RESAMPLES,
               seed: int = 0) -> dict[str, ClassAgreement]:
    """κ of "this label or not" per label. The bootstrap resamples the comparisons once: each label's 2×2
    table is read off the resampled k×k table (both gave it, one of them, neither)."""
    out = {}
    k = len(LABELS)
    code = {label: i for i, label in enumerate(LABELS)}
    tables = None
    if intervals and len(comparisons) >= MIN_FOR_INTERVAL:
        cells = comparisons["la"].map(code).to_numpy(dtype=int) * k + comparisons["lb"].map(code).to_numpy(dtype=int)
        tables = _resampled_counts(cells, k * k, resamples, seed).reshape(resamples, k, k)
    for label in LABELS:
        x = (comparisons["la"] == label).to_numpy()
        y = (comparisons["lb"] == label).to_numpy()
        n = int((x | y).sum())
        if n == 0:
            continue
        ci95 = None
        if tables is not None:
            c = code[label]
            both, a_only = tables[:, c, c], tables[:, c, :].sum(axis=1) - tables[:, c, c]
            b_only = tables[:, :, c].sum(axis=1) - tables[:, c, c]
            neither = tables.sum(axis=(1, 2)) - both - a_only - b_only
            binary = np.stack([np.stack([both, a_only], axis=1), np.stack([b_only, neither], axis=1)], axis=1)
            low, high = np.percentile(_kappa_from_tables(binary.transpose(0, 2, 1)), [2.5, 97.5])
            ci95 = (round(float(low), 4), round(float(high), 4))
        out[label] = ClassAgreement(n=n, kappa=_r(cohen_kappa(x.tolist(), y.tolist())), ci95=ci95)
    return out


def line_agreement(db: Database, script_id: int | None = None, *, hidden_scripts=frozenset(),
                   intervals: bool = True, with_ratings: bool = True) -> AgreementReport:
    """Agreement on the lines two or more people labeled (of one script, or of every ready script)."""
    table = team_store.label_table(db, script_id)
    if hidden_scripts:
        table = table[~table["script_id"].isin(list(hidden_scripts))]
    human = table[table["source"] == "human"]
    adjudicated = table[table["source"] == "adjudicated"].sort_values("event_id").drop_duplicates("line_id", keep="last")
    counts = human.groupby("line_id")["annotator"].nunique()
    overlapped = human[human["line_id"].isin(counts[counts >= 2].index)]
    wide = overlapped.pivot_table(index="line_id", columns="annotator", values="label", aggfunc="last")
    stamps = overlapped.pivot_table(index="line_id", columns="annotator", values="created_at", aggfunc="last")
    comparisons = _comparisons(wide, stamps)
    pairs = []
    for (a, b), group in comparisons.groupby(["a", "b"], sort=True):
        pairs.append(PairAgreement(a=a, b=b, n=len(group), agreement=_r(float((group["la"] == group["lb"]).mean())),
                                   kappa=_r(cohen_kappa(group["la"], group["lb"])),
                                   ci95=kappa_interval(group["la"].tolist(), group["lb"].tolist())
                                   if intervals else None))
    split = overlapped.groupby("line_id")["label"].nunique()
    disputed = set(split[split > 1].index)
    matrix = _alpha_matrix(wide, sorted(LABELS)) if len(wide) else np.empty((0, 0))
    report = AgreementReport(
        lines_overlapped=int(len(wide)), people=sorted(human["annotator"].unique().tolist()), pairs=pairs,
        per_class=_per_class(comparisons, intervals=intervals), kappa=_pooled(comparisons),
        alpha=_r(krippendorff_alpha(matrix)) if len(wide) else None,
        alpha_ci95=alpha_interval(matrix) if intervals and len(wide) else None,
        disagreements=len(disputed), adjudicated=int(adjudicated["line_id"].isin(list(disputed)).sum()))
    if len(comparisons):
        script_of = overlapped.drop_duplicates("line_id").set_index("line_id")["script_id"]
        comparisons["script_id"] = comparisons["line_id"].map(script_of)
        titles = script_store.script_titles(db)
        for sid, group in comparisons.groupby("script_id"):
            report.per_script.append({"script_id": int(sid), "title": titles.get(int(sid), ""),
                                      "lines_overlapped": int(group["line_id"].nunique()),
                                      "agreement": _r(float((group["la"] == group["lb"]).mean())),
                                      "kappa": _pooled(group)})
        for day, group in comparisons.groupby(comparisons["at"].str[:10]):
            report.over_time.append({"day": day, "comparisons": len(group),
                                     "agreement": _r(float((group["la"] == group["lb"]).mean())),
                                     "kappa": _pooled(group)})
    report.versus_adjudicated = versus_adjudicated(human, adjudicated)
    if with_ratings:
        from store.sequences import departments

        for department in departments(db):
            summary = rating_agreement(db, department, script_id=script_id, hidden_scripts=hidden_scripts)
            if summary["sequences_overlapped"]:
                report.ratings[department] = summary
    return report


def versus_adjudicated(human: pd.DataFrame, adjudicated: pd.DataFrame) -> list[dict]:
    """Each person's labels on adjudicated lines against the lead's decision: n, agreement, κ."""
    if adjudicated.empty or human.empty:
        return []
    decided = adjudicated.set_index("line_id")["label"]
    rows = []
    for name, mine in human[human["line_id"].isin(decided.index)].groupby("annotator"):
        truth = decided.loc[mine["line_id"]].tolist()
        given = mine["label"].tolist()
        rows.append({"annotator": name, "n": len(given),
                     "agreement": _r(float(np.mean([g == t for g, t in zip(given, truth)]))),
                     "kappa": _r(cohen_kappa(given, truth))})
    return rows


def rating_agreement(db: Database, department: str, *, script_id: int | None = None,
                     hidden_scripts=frozenset()) -> dict:
    """Complexity ratings (1–5) several people gave one sequence: per pair quadratic-weighted κ, and
    ordinal Krippendorff's α over everyone."""
    from models.complexity.evaluation import quadratic_weighted_kappa

    frame = team_store.rating_raters(db, department=department, script_id=script_id)
    frame = frame[frame["source"] == "human"]
    if hidden_scripts:
        frame = frame[~frame["script_id"].isin(list(hidden_scripts))]
    counts = frame.groupby("sequence_id")["annotator"].nunique()
    frame = frame[frame["sequence_id"].isin(counts[counts >= 2].index)]
    wide = frame.pivot_table(index="sequence_id", columns="annotator", values="value", aggfunc="last")
    pairs = []
    for a, b in combinations(list(wide.columns), 2):
        both = wide[[a, b]].dropna()
        if len(both):
            pairs.append({"a": a, "b": b, "n": len(both),
                          "agreement": _r(float((both[a] == both[b]).mean())),
                          "weighted_kappa": _r(quadratic_weighted_kappa(both[a].astype(int), both[b].astype(int)))})
    matrix = wide.T.to_numpy(dtype=float) if len(wide) else np.empty((0, 0))
    return {"sequences_overlapped": int(len(wide)), "pairs": pairs,
            "alpha_ordinal": _r(krippendorff_alpha(matrix, level="ordinal")) if len(wide) else None}
