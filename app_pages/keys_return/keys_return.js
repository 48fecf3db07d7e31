// Keys return to the page after any widget choice (issue 25): a choice made in a dropdown, a toggle, a
// radio, a slider, a table row or a field committed with Enter leaves the keyboard focus in that widget,
// and every page's keys (Streamlit's button shortcuts, the labeling view, the `c` listener) ignore keys
// typed into a field. So once the choice is made, the widget gives the focus back to the page. Typing in
// a field is never interrupted: only a finished choice releases it.

const FIELD_TAGS = ["INPUT", "TEXTAREA", "SELECT"];
const CHOICE_INPUTS = ["checkbox", "radio", "file", "range"];
const RELEASE_MS = 60; // after the widget's own handlers (BaseWeb closes its menu, Streamlit sends the value)

function holdsKeys(el, doc) {
  if (!el || el === doc.body) return false;
  if (el.isContentEditable || FIELD_TAGS.includes(el.tagName)) return true;
  if (el.getAttribute && el.getAttribute("role") === "slider") return true;
  return Boolean(el.closest && el.closest('[data-testid="stDataFrame"], [data-testid="stDataFrameResizable"]'));
}

function install(win) {
  const doc = win.document;
  const release = (delay = RELEASE_MS) => setTimeout(() => {
    const active = doc.activeElement;
    if (holdsKeys(active, doc)) {
      active.blur();
      win.__scriptlabelKeysReleased = (win.__scriptlabelKeysReleased || 0) + 1;
    }
  }, delay);
  // An option picked with the mouse (selectbox, multiselect, the sidebar's script and order pickers).
  doc.addEventListener("click", (e) => {
    const t = e.target;
    if (t && t.closest && t.closest('[role="option"], [role="listbox"] li')) release();
  }, true);
  // A toggle, checkbox or radio flipped; files chosen.
  doc.addEventListener("change", (e) => {
    const t = e.target;
    if (t && t.tagName === "INPUT" && CHOICE_INPUTS.includes(t.type)) release();
  }, true);
  // A slider dragged or clicked, a table row selected.
  doc.addEventListener("pointerup", (e) => {
    const t = e.target;
    if (t && t.closest && t.closest('[data-testid="stSlider"], [data-baseweb="slider"], [data-testid="stDataFrame"]')) {
      release(150);
    }
  }, true);
  // A choice made with the keyboard (Enter on an option, Enter in a number or text field: Streamlit
  // commits it), or Escape: the person is done with the widget.
  doc.addEventListener("keydown", (e) => {
    const t = e.target;
    if (!holdsKeys(t, doc)) return;
    if (e.key === "Escape") release(0);
    else if (e.key === "Enter" && t.tagName === "INPUT" && !e.isComposing) release();
    else if (e.key === "Enter" && t.tagName === "TEXTAREA" && (e.ctrlKey || e.metaKey)) release();
  }, true);
}

export default function () {
  if (window.__scriptlabelKeysReturn) return undefined; // once per browser tab, whatever page mounts it
  window.__scriptlabelKeysReturn = true;
  install(window);
  return undefined;
}
