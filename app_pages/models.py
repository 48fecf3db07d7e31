"""Models: retrain, live run status, version history with metrics, roll back; agreement between people."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app_pages import common
from app_pages import model_views as app_models
from store.models import model_token
from labeling.training.runs import make_current, request_training
from labeling.training.versions import pin_note
from store import models as model_store
from store.accounts import audit
from store import sequences as sequence_store
from store.types import ScriptlabelError

common.page_requires("train")
st.title("Models")
db = common.db()
settings = common.settings()

train = st.columns([2, 2, 3, 2])
if train[0].button("Retrain the line model", type="primary", key="retrain_lines"):
    try:
        common.require("train")
        run_id = request_training(settings.db_path, kind="lines")
        st.toast(f"Training run {int(run_id)} started")
    except ScriptlabelError as exc:
        common.report_error(exc)
department = train[1].selectbox("Complexity department", sequence_store.departments(db), key="train_department")
if train[2].button(f"Train the {common.escape_markdown(department)} complexity model", key="retrain_complexity"):
    try:
        common.require("train")
        run_id = request_training(settings.db_path, kind="complexity", department=department)
        st.toast(f"Complexity run {int(run_id)} started")
    except ScriptlabelError as exc:
        common.report_error(exc)
if train[3].button("Train the tag model", key="retrain_tags",
                   help="Breakdown tags of sequences (crowd, water, fire, vehicles, …), from the tags people gave"):
    try:
        common.require("train")
        run_id = request_training(settings.db_path, kind="tags")
        st.toast(f"Tag run {int(run_id)} started")
    except ScriptlabelError as exc:
        common.report_error(exc)


@st.fragment(run_every=2)
def run_status() -> None:
    """Polls the training runs; reloads the whole page when one finishes so the versions show it."""
    runs = app_models.runs_table(common.db(), limit=8)
    if runs.empty:
        st.caption("No training run yet.")
        return
    active = runs[runs["status"].isin(["queued", "running"])]
    for run in active.itertuples():
        st.info(f"Run {int(run.run_id)} ({common.escape_markdown(run.kind)}"
                f"{' · ' + common.escape_markdown(run.department) if run.department else ''}): "
                f"{common.escape_markdown(run.status)} for {run.seconds or 0:.0f} s…", icon=":material/hourglass_top:")
    for run in runs[(runs["kind"] == "lines") & (runs["status"] == "done")].head(1).itertuples():
        done, total = run.repredict_done, run.repredict_total
        if total and total == total and done == done and done < total:  # NaN-safe: older runs have neither
            st.progress(done / total, text=f"Re-predicting the library with v{int(run.version)}: {int(done)} of "
                                           f"{int(total)} scripts (the script being labeled was first)")
    latest = runs.iloc[0]
    if latest["status"] == "failed":
        st.warning(f"Run {int(latest['run_id'])} failed: {common.escape_markdown(common.app_message(latest['error']))}")
    st.dataframe(runs, hide_index=True, key="runs_table",
                 column_order=["run_id", "kind", "department", "status", "trigger", "seconds", "version",
                               "n_labels", "requested_at", "error"],
                 column_config={"run_id": st.column_config.NumberColumn("run"),
                                "kind": st.column_config.TextColumn("model"),
                                "trigger": st.column_config.TextColumn("started by"),
                                "seconds": st.column_config.NumberColumn("duration (s)", format="%.1f"),
                                "n_labels": st.column_config.NumberColumn("labels learned from"),
                                "requested_at": st.column_config.TextColumn("asked for at"),
                                "error": st.column_config.TextColumn("what went wrong")})
    if model_token(common.db()) != st.session_state.get("models_token"):
        st.rerun(scope="app")  # a run started or finished, or the current model changed


st.session_state["models_token"] = model_token(db)


st.subheader("Training runs")
run_status()

st.subheader("Versions")
current = model_store.current_version(db, "lines")
current_line = current.version if current is not None else 0
st.info(f"**Suggestions now come from v{int(current.version)}**, retrained "
        f"{common.escape_markdown(current.created_at[:16].replace('T', ' '))} UTC"
        if current is not None else "**Suggestions now come from v0**, the model scriptlabel ships with",
        icon=":material/model_training:")
if (pin_text := pin_note(db)) is not None:
    pinned_row = st.columns([6, 1])
    pinned_row[0].warning(common.escape_markdown(pin_text), icon=":material/push_pin:")
    if pinned_row[1].button("Unpin", key="unpin_lines"):
        who = common.require("rollback")
        lifted = model_store.unpin_current(db, kind="lines")
        audit(db, who.name, "unpin", detail={"version": None if lifted is None else lifted["version"]})
        st.rerun()
st.markdown(common.escape_markdown(app_models.base_model_description()))
line_versions = app_models.line_versions_table(db)
st.dataframe(line_versions, hide_index=True, key="line_versions_table", column_config={
    "accuracy": st.column_config.NumberColumn(format="%.3f"),
    "n": st.column_config.NumberColumn("n", help="labels people gave while this version made the suggestion"),
    "n_labels": st.column_config.NumberColumn("learned from", help="labels people gave before it was trained"),
    "pinned": st.column_config.CheckboxColumn("pinned"),
    "why": st.column_config.TextColumn("why current / candidate", width="large")})
st.caption("Accuracy: how often a version's suggestion was the label a person then gave (on lines it had not "
           "learned from), over n labels, with the range it is 95% likely to be in. Labeling asks about the lines "
           "the model is least sure of first, so it reads lower than on an average line. A retrained version "
           "becomes current unless it is worse than the current one beyond chance on the newest labels; otherwise "
           "it waits as a candidate. Making an older version current pins it.")
curve = app_models.learning_curve_frame(db)
if len(curve):
    st.markdown("**Learning curve** — each version's suggestions against the labels people then gave")
    st.altair_chart(app_models.learning_curve_chart(curve), key="learning_curve")
    thin = curve[~curve["trend"]]
    st.caption("Dots: share right; bars: the 95% range; the number beside a dot: labels it was checked on."
               + (f" A line joins only versions checked on {app_models.MIN_N} labels or more; "
                  f"{common.escape_markdown(', '.join(thin['name']))} had fewer, so read their bars, not the dot." if len(thin) else ""))
versions = app_models.versions_table(db)
others = versions[versions["kind"] != "lines"]
if not others.empty:
    st.caption("Complexity and tag models")
    st.dataframe(others, hide_index=True, key="versions_table", column_config={
        "accuracy": st.column_config.NumberColumn(format="%.3f"),
        "macro_f1": st.column_config.NumberColumn("macro F1", format="%.3f")})
if len(versions) == 0:
    st.caption("No retrained version yet: label some lines, then retrain (it also retrains by itself every "
               f"{int(settings.retrain_every)} labels).")
kinds = {int(v): "lines" for v in line_versions["version"]} | {int(r.version): r.kind for r in others.itertuples()}
status = dict(zip(line_versions["version"].astype(int), line_versions["status"]))
newest = max(kinds)  # not the count: old versions are pruned as new ones come
if st.session_state.get("model_versions_seen") != newest:  # a new version: show it, not the old pick
    st.session_state["model_versions_seen"] = newest
    st.session_state.pop("model_version", None)
picked = int(st.selectbox("Version", sorted(kinds, reverse=True), key="model_version",
                          format_func=lambda v: f"v{v} ({kinds[v]}" + (f" · {status[v]})" if v in status else ")")))
if kinds[picked] == "lines":
    chosen = line_versions.set_index("version").loc[picked]
    st.markdown(common.escape_markdown(
        f"v{picked} · {chosen['status']}" + (" · pinned" if chosen["pinned"] else "")
        + (f" · accuracy {chosen['accuracy']:.3f} (n = {chosen['n']}, 95% interval {chosen['95% interval']})"
           if chosen["n"] else " · no label given on its suggestions yet") + f" — {chosen['why']}"))
    metrics = app_models.suggestion_scores(db, picked)
    if not metrics:
        st.caption(f"No label was given yet while v{int(picked)} made the suggestions.")
else:
    metrics = model_store.get_version(db, picked).metrics
charts = st.columns(2)
confusion = app_models.confusion_png(metrics) if metrics else None
if confusion:
    charts[0].image(confusion, caption="Confusion matrix of its suggestions (rows: the label given, columns: "
                                       "suggested)" if kinds[picked] == "lines" else
                    "Confusion matrix (rows: true, columns: predicted)")
f1 = app_models.per_class_f1(metrics) if metrics else pd.DataFrame()
if not f1.empty:
    charts[1].bar_chart(f1.set_index("label")["f1"], height=300)
comparison = app_models.complexity_comparison(metrics) if metrics else pd.DataFrame()
if not comparison.empty:
    st.caption(f"{common.escape_markdown(metrics.get('department', ''))} complexity, "
               f"{common.escape_markdown(metrics.get('n_sequences', '?'))} rated sequences, "
               f"grouped cross-validation: {common.escape_markdown(metrics.get('verdict', ''))}")
    st.dataframe(comparison, hide_index=True, key="complexity_table")
elif kinds[picked] != "lines" and confusion is None and f1.empty:
    st.caption("No scores were recorded for this version.")
is_current = status.get(picked) == "current" if kinds[picked] == "lines" else \
    bool(versions.set_index("version").loc[picked, "current"])
if not is_current:
    back = kinds[picked] == "lines" and picked < current_line
    if st.button(f"Make v{int(picked)} current" + (" (roll back: pins it)" if back else ""), key="rollback"):
        who = common.require("rollback")
        make_current(db, picked, by=who.name, kind=kinds[picked])
        audit(db, who.name, "rollback", detail={"version": picked})
        st.toast(f"v{int(picked)} is current" + (" and pinned" if back else ""))
        st.rerun()
if picked:
    pinned = model_store.is_pinned(db, picked)
    keep = st.toggle(f"Keep v{int(picked)} (never pruned)", value=pinned, key=f"pin_{picked}_{int(pinned)}",
                     help=f"Only the {model_store.KEEP_MODEL_VERSIONS} newest versions of each kind are kept, "
                          "besides the current one and the ones kept here.")
    if keep != pinned:
        model_store.set_pinned(db, picked, keep)

st.caption("Agreement between people, overlap and the adjudication of their disagreements: the Team page.")


# --- how far the confidence can be trusted (issue 16: calibration) ------------------------------
def confidence_section() -> None:
    """Reliability diagram and ECE: the shipped base model's (held out, from its calibration file) and
    the one people saw while labeling (each label against the confidence shown beside its suggestion)."""
    st.subheader("Confidence: reliability and calibration error (ECE)")
    base = app_models.base_model_reliability()
    shown = app_models.label_reliability(db)
    if base["fitted"] and base.get("after"):
        by_kind = base["after"]["by_kind"]
        st.caption(f"The shipped model (v0): its confidence was calibrated on lines held out while it was built; on "
                   f"them, confidence and the share right differ by {base['after']['ece']:.2%} on average "
                   f"(before calibration {base['before']['ece']:.2%}"
                   + ("; by kind of script: " + ", ".join(f"{common.escape_markdown(kind)} {value:.4f}"
                                                           for kind, value in by_kind.items()) if by_kind else "") + "), and its most confident 90% of "
                   f"lines are {base['after']['accuracy_at_90']:.1%} right.")
    else:
        st.warning("The base line model (v0) has no calibration fitted for it, so the confidence shown is its raw "
                   "probability, overconfident on scripts it never saw. Whoever installed scriptlabel can fit "
                   "one (the README's section on calibration says how).")
    if shown["n"]:
        low, high = shown["ece_ci95"] or (float("nan"), float("nan"))
        st.caption(f"While labeling: ECE {shown['ece']:.4f} (95% interval {low:.3f}–{high:.3f}) over "
                   f"{shown['n']:,} labels given beside a suggestion; suggestions kept {shown['accuracy']:.1%}, "
                   f"mean confidence shown {shown['mean_confidence']:.1%}. The queue asks about unsure lines "
                   "first, so these are harder than the average line.")
    else:
        st.caption("While labeling: no label given beside a suggestion yet.")
    curves = {}
    if base.get("after") is not None:
        curves["base, held out (calibrated)"] = base["after"]["table"]
        curves["base, held out (raw)"] = base["before"]["table"]
    if shown["n"]:
        curves[f"labels given ({shown['n']})"] = shown["table"]
    diagram = app_models.reliability_png(curves)
    if diagram:
        st.image(diagram, caption="Reliability: share of suggestions right against the confidence shown "
                                  "(15 bins; on the diagonal = calibrated, below = overconfident)")


confidence_section()
