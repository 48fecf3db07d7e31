"""Label: the queue's next line with its page crop, one key per label, Enter accepts, u undoes, s skips."""

from __future__ import annotations

import streamlit as st

from app_pages import common
from labeling import app_support as support
from labeling import label_cursor as cursors
from store.types import LABEL_KEYS, ScriptlabelError

st.title("Label")
db = common.db()
settings = common.settings()
name = common.annotator()
if not name:
    st.info("Type your name under **Annotator** in the sidebar to start: it is saved with every label.")
    st.stop()

if not support.progress(db)[1]:
    st.info("No scripts yet: add one on the Scripts page.")
    st.stop()

top = st.columns([3, 2, 2])
with top[0]:
    script_id = common.script_picker(allow_all=True, key="label_script")
strategy = top[1].selectbox("Order", support.STRATEGY_NAMES, key="strategy",
                            help="margin/entropy/least_confidence: the lines the model is least sure of first; "
                                 "random: an unbiased sample.")

cursor: cursors.LabelCursor | None = st.session_state.get("cursor")
if cursor is None:
    cursor = cursors.LabelCursor(annotator=name, script_id=script_id, strategy=strategy,
                                 batch_size=settings.batch_size, db_path=str(settings.db_path))
    st.session_state["cursor"] = cursor
    cursors.advance(db, cursor)
elif (cursor.annotator, cursor.script_id, cursor.strategy) != (name, script_id, strategy):
    cursors.retarget(db, cursor, annotator=name, script_id=script_id, strategy=strategy)


def _act(action, *args, **kwargs) -> None:
    try:
        action(db, st.session_state["cursor"], *args, **kwargs)
    except ScriptlabelError as exc:
        st.session_state["label_error"] = str(exc)


def _label(label: str | None) -> None:
    options = dict(apply_to_group=st.session_state.get("apply_group", True), db_path=settings.db_path,
                   retrain_every=settings.retrain_every)
    if label is None:
        _act(cursors.accept_suggestion, **options)
    else:
        _act(cursors.label_current, label, **options)


def _edit(widget_key: str) -> None:
    _act(cursors.edit_current_text, st.session_state[widget_key])


if error := st.session_state.pop("label_error", None):
    st.error(error)

labeled, total = support.progress(db, script_id)
stats = top[2].container()
stats.progress(labeled / total if total else 0.0, text=f"{labeled} of {total} lines labeled")
stats.caption(f"This session: {cursor.labeled} labeled · {cursor.skips} skipped · {cursor.undos} undone"
              + (f" · last key {cursor.last_action_ms:.0f} ms" if cursor.last_action_ms is not None else ""))

item = cursor.current
if item is None:
    st.success("Nothing left in the queue: every line here is labeled (or being labeled by someone else).")
    st.button("Undo my last label", key="key_undo", shortcut="U", on_click=_act, args=(cursors.undo_last,))
    st.stop()

try:
    lines = common.plain_lines(item.script_id)
except ScriptlabelError:  # the script was deleted (on the Scripts page, maybe by someone else)
    cursors.retarget(db, cursor, annotator=name, script_id=None, strategy=strategy)
    st.rerun()

left, right = st.columns([3, 2], gap="large")
with left:
    row = lines[lines["line_id"] == item.line_id]
    line = row.iloc[0].to_dict() if len(row) else {}
    st.caption(f"Script #{item.script_id} · page {item.page} · line {item.line_no}")
    crop = support.line_crop(common.pages(item.script_id).get(item.page), line)
    if crop is not None:
        st.image(crop, width="stretch")
    else:
        st.code(support.text_context(lines, item.line_no), language=None)
    st.text_input("Text (fix reading errors here; the original is kept)", value=item.text,
                  key=f"text_{item.line_id}", on_change=_edit, args=(f"text_{item.line_id}",))
    if item.suggestion:
        st.markdown(f"Suggestion: **{common.LABEL_TITLES[item.suggestion]}** · "
                    f"{item.confidence:.0%} sure — press **Enter** to accept")
    else:
        st.markdown("No suggestion yet: the model trains after the first labels.")
    if len(item.group_line_ids) > 1:
        st.toggle(f"Apply to all {len(item.group_line_ids)} identical lines", value=True, key="apply_group")
with right:
    st.caption("Around this line")
    around = support.neighbours(db, lines, common.predictions(item.script_id), item.line_no)
    around = around.assign(label=around["label"].fillna(around["suggestion"].map(
        lambda s: f"({s})" if isinstance(s, str) else "")))
    st.dataframe(support.style_lines(around[["line_no", "label", "text"]]), hide_index=True, key="around",
                 column_config={"line_no": st.column_config.NumberColumn("line", width="small"),
                                "label": st.column_config.TextColumn("label", width="small",
                                                                     help="(in brackets: the model's suggestion)")})

buttons = st.columns(len(LABEL_KEYS))
for column, (key, label) in zip(buttons, LABEL_KEYS.items()):
    native = key in common.NATIVE_KEYS
    column.button(common.BUTTON_TITLES[label] + ("" if native else f" ({key})"), key=f"key_{label}",
                  shortcut=key.upper() if native else None, on_click=_label, args=(label,), width="stretch",
                  type="primary" if label == item.suggestion else "secondary")
actions = st.columns(3)
actions[0].button("Accept suggestion", key="key_accept", shortcut="Enter", on_click=_label, args=(None,),
                  disabled=not item.suggestion, width="stretch")
actions[1].button("Skip", key="key_skip", shortcut="S", on_click=_act, args=(cursors.skip_current,),
                  width="stretch")
actions[2].button("Undo", key="key_undo", shortcut="U", on_click=_act, args=(cursors.undo_last,), width="stretch")
common.key_listener({key: f"key_{label}" for key, label in LABEL_KEYS.items() if key not in common.NATIVE_KEYS})
