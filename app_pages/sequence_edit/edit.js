// Split, merge and undo on the Sequences page, each click posted to the app's own route
// (/api/sequences/edit, labeling/sequences/api.py) with the sequence id and the version of it this page
// showed, and an id of its own. A Streamlit button's click is a one-off trigger that is dropped when the
// run it starts is replaced (the page reloads itself when a retrain ends); a request to the route is not.
// A failed request is sent again with the same id (the route applies a click once); a click on a sequence
// that changed since is refused and changes nothing. When done, the element tells the page through a state
// value (`done`), which a replaced run keeps.

const RETRIES = 5;
const state = (window.__scriptlabelSequenceEdits = window.__scriptlabelSequenceEdits || {});

function clickId() {
  const raw = window.crypto && window.crypto.randomUUID ? window.crypto.randomUUID()
    : `${Date.now().toString(36)}${Math.random().toString(36).slice(2)}`;
  return `seq-${raw.replace(/-/g, "")}`;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function post(data, body) {
  const headers = { "Content-Type": "application/json", "X-Scriptlabel": "1" };
  if (data.session) headers["X-Scriptlabel-Session"] = data.session;
  for (let attempt = 0; ; attempt += 1) {
    let resp = null;
    try {
      resp = await fetch(data.api, { method: "POST", headers, body: JSON.stringify(body) });
    } catch (e) {
      resp = null; // the app is out of reach for a moment (a restart, a network blip): try again, same id
    }
    if (resp && resp.status < 500) {
      let payload = null;
      try { payload = await resp.json(); } catch (e) { payload = { error: "the app's answer could not be read" }; }
      return { ok: resp.ok, status: resp.status, payload };
    }
    if (attempt >= RETRIES) {
      return { ok: false, status: resp ? resp.status : 0,
               payload: { error: "the app could not be reached: nothing was changed; try again" } };
    }
    await sleep(400 * 2 ** attempt);
  }
}

function el(tag, props, children) {
  const node = document.createElement(tag);
  Object.assign(node, props || {});
  (children || []).forEach((child) => node.append(child));
  return node;
}

function say(root, text, kind) {
  const message = root.querySelector(".sl-message");
  if (!message) return;
  message.textContent = text || "";
  message.dataset.kind = kind || "";
}

async function act(root, data, mine, body, setStateValue) {
  if (mine.busy) return; // one click at a time: a double click sends one request
  mine.busy = true;
  root.querySelectorAll("button").forEach((b) => { b.disabled = true; });
  say(root, "Saving…", "");
  const sent = { ...body, client_id: clickId(), database: data.database, annotator: data.annotator };
  const answer = await post(data, sent);
  if (answer.ok) {
    const edit = answer.payload.edit;
    const text = edit.undone_at ? `Undone: ${edit.text}` : edit.text.charAt(0).toUpperCase() + edit.text.slice(1);
    say(root, text, "done");
    // stays disabled: the sequence it showed changed; the page's next run brings the new one
    setStateValue("done", { client_id: sent.client_id, edit_id: edit.edit_id, show: answer.payload.show,
                            kind: edit.kind, undone: Boolean(edit.undone_at) });
  } else {
    say(root, answer.payload.error || `the change failed (HTTP ${answer.status})`, "error");
    if (answer.payload.changed) {
      setStateValue("done", { client_id: sent.client_id, changed: true }); // show the page as it is now
    } else {
      mine.busy = false;
      root.querySelectorAll("button").forEach((b) => { b.disabled = b.dataset.off === "1"; });
    }
  }
}

function renderEdit(root, data, mine, setStateValue) {
  const seq = data.sequence;
  const rows = [];
  if (seq.last_line_no > seq.first_line_no) {
    const at = el("input", { type: "number", min: seq.first_line_no + 1, max: seq.last_line_no,
                             value: seq.first_line_no + 1, step: 1, name: "at" });
    at.setAttribute("aria-label", "New sequence starts at line");
    const title = el("input", { type: "text", placeholder: "untitled", maxLength: 200, name: "title" });
    title.setAttribute("aria-label", "Its title");
    const split = el("button", { type: "button", textContent: "Split", className: "sl-primary",
                                 title: `Split ${seq.code}: a new sequence starts at the line chosen; Undo takes it back` });
    const go = () => {
      const line = Number(at.value);
      if (!Number.isInteger(line) || line <= seq.first_line_no || line > seq.last_line_no) {
        say(root, `Choose a line from ${seq.first_line_no + 1} to ${seq.last_line_no}.`, "error");
        return;
      }
      act(root, data, mine, { action: "split", sequence_id: seq.sequence_id, version: seq.version,
                              at_line_no: line, title: title.value }, setStateValue);
    };
    split.addEventListener("click", go);
    [at, title].forEach((field) => field.addEventListener("keydown", (e) => {
      if (e.key === "Enter") { e.preventDefault(); field.blur(); go(); }
    }));
    rows.push(el("div", { className: "sl-row" }, [
      el("label", {}, [el("span", { textContent: "New sequence starts at line" }), at]),
      el("label", {}, [el("span", { textContent: "Its title" }), title]),
      split,
    ]));
  }
  const following = data.next;
  const merge = el("button", { type: "button", textContent: `Merge ${seq.code} with the next sequence`,
                               disabled: !following });
  merge.dataset.off = following ? "0" : "1";
  merge.title = following
    ? `${following.code} (${following.lines} lines, ${following.ratings} ratings) joins ${seq.code}; Undo takes it back`
    : `${seq.code} is the last sequence of its script`;
  merge.addEventListener("click", () => act(root, data, mine, { action: "merge", sequence_id: seq.sequence_id,
                                                                version: seq.version }, setStateValue));
  rows.push(el("div", { className: "sl-row" }, [merge]));
  rows.push(el("span", { className: "sl-message", role: "status" }));
  root.replaceChildren(...rows);
}

function renderUndo(root, data, mine, setStateValue) {
  const undo = el("button", { type: "button", textContent: "Undo", className: "sl-primary",
                              title: "Takes this split or merge back (lines, ratings and tags return)" });
  undo.addEventListener("click", () => act(root, data, mine, { action: "undo", edit_id: data.edit_id }, setStateValue));
  root.replaceChildren(el("div", { className: "sl-row" }, [undo, el("span", { className: "sl-message", role: "status" })]));
}

export default function (component) {
  const { data, parentElement, setStateValue, key } = component;
  const root = parentElement.querySelector(".sl-seq-edit");
  if (!root || !data || !data.database) return undefined;
  // The same sequence at the same version (or the same edit) keeps its controls as they are: a rerun
  // does not reset a line typed in, nor a request under way.
  const shown = JSON.stringify([data.mode, data.sequence, data.next, data.edit_id]);
  const mine = state[key] && state[key].shown === shown ? state[key] : (state[key] = { shown, busy: false });
  if (mine.root === root && root.childElementCount) return undefined;
  mine.root = root;
  if (data.mode === "undo") renderUndo(root, data, mine, setStateValue);
  else renderEdit(root, data, mine, setStateValue);
  return undefined;
}
