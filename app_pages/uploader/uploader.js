// The Scripts page's uploader (Streamlit components v2). Each chosen or dropped file is sent at once to the
// app's upload route as the request's body: the browser streams it from disk, the server writes it to disk
// in chunks (labeling/ingest/upload_api.py). XMLHttpRequest, not fetch: only it reports upload progress.
// Every text from a file name or the server is set as text, never as HTML.

// The rows outlive a rerun or a visit to another page; `roots` are the mounted uploaders (in a shadow root:
// the document cannot find them by a selector).
const state = (window.__scriptlabelUploads = window.__scriptlabelUploads || { rows: [], roots: new Set() });

function uploadId() {
  if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
  return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
}

function megabytes(n) {
  if (n < 2 ** 20) return `${Math.max(1, Math.round(n / 1024))} KB`;
  return n >= 10 * 2 ** 20 ? `${Math.round(n / 2 ** 20).toLocaleString()} MB` : `${(n / 2 ** 20).toFixed(1)} MB`;
}

function render(root) {
  const list = root.querySelector('[data-role="list"]');
  if (!list) return;
  list.replaceChildren(...state.rows.map((row) => {
    const li = document.createElement("li");
    li.dataset.kind = row.kind;
    li.dataset.upload = row.id;
    const name = document.createElement("span");
    name.className = "sl-up-name";
    name.textContent = row.name;
    const bar = document.createElement("div");
    bar.className = "sl-up-bar";
    const fill = document.createElement("div");
    fill.style.width = `${row.size ? Math.min(100, (100 * row.sent) / row.size) : 0}%`;
    bar.appendChild(fill);
    bar.setAttribute("role", "progressbar");
    bar.setAttribute("aria-valuenow", String(row.size ? Math.round((100 * row.sent) / row.size) : 0));
    const text = document.createElement("div");
    text.className = "sl-up-state";
    text.textContent = row.text;
    li.append(name, bar, text);
    return li;
  }));
}

function renderAll() {
  for (const root of Array.from(state.roots)) {
    if (root.isConnected) render(root);
    else state.roots.delete(root);
  }
}

function send(cfg, file) {
  const row = { id: uploadId(), name: file.name, size: file.size, sent: 0, kind: "sending", text: "sending…" };
  state.rows.unshift(row);
  state.rows = state.rows.slice(0, 20);
  if (file.size > cfg.max_bytes) {
    Object.assign(row, { kind: "error", text: `${megabytes(file.size)} is over the limit of ${megabytes(cfg.max_bytes)}; ` +
      "nothing was sent — split the PDF into parts and upload each" });
    renderAll();
    return;
  }
  const params = new URLSearchParams({ name: file.name, client_id: row.id, database: cfg.database,
                                       annotator: cfg.annotator || "" });
  const xhr = new XMLHttpRequest();
  xhr.open("POST", `${cfg.api}?${params}`);
  xhr.setRequestHeader("X-Scriptlabel", "1");
  if (cfg.session) xhr.setRequestHeader("X-Scriptlabel-Session", cfg.session);
  xhr.setRequestHeader("Content-Type", "application/octet-stream");
  xhr.upload.onprogress = (e) => {
    row.sent = e.loaded;
    row.text = `sending… ${megabytes(e.loaded)} of ${megabytes(file.size)}`;
    renderAll();
  };
  xhr.onload = () => {
    let answer = {};
    try { answer = JSON.parse(xhr.responseText || "{}"); } catch (_e) { answer = {}; }
    if (xhr.status === 200 && answer.job_id) {
      Object.assign(row, { sent: file.size, kind: "done",
                           text: `sent (${megabytes(file.size)}): its ingest is listed below` });
    } else {
      Object.assign(row, { kind: "error", text: answer.error || `the server refused the file (HTTP ${xhr.status})` });
    }
    renderAll();
  };
  xhr.onerror = () => {
    Object.assign(row, { kind: "error", text: "the connection to the server was lost; nothing was stored — choose the file again" });
    renderAll();
  };
  xhr.send(file);
  renderAll();
}

export default function (component) {
  const { data, parentElement } = component;
  if (!data || !data.database) return undefined;
  state.cfg = data;
  const root = parentElement.querySelector(".sl-up");
  if (root && !state.roots.has(root)) {
    state.roots.add(root);
    const input = root.querySelector('[data-role="input"]');
    const drop = root.querySelector('[data-role="drop"]');
    input.accept = data.accept;
    root.querySelector('[data-role="hint"]').textContent =
      `or drop them here — each is ingested as soon as it is sent (up to ${data.max_pages} pages and ` +
      `${megabytes(data.max_bytes)} a file)`;
    input.addEventListener("change", () => {
      for (const file of Array.from(input.files || [])) send(state.cfg, file);
      input.value = "";  // the same file can be chosen again
    });
    drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("sl-over"); });
    drop.addEventListener("dragleave", () => drop.classList.remove("sl-over"));
    drop.addEventListener("drop", (e) => {
      e.preventDefault();
      drop.classList.remove("sl-over");
      for (const file of Array.from((e.dataTransfer && e.dataTransfer.files) || [])) send(state.cfg, file);
    });
  }
  if (root) render(root);
  return undefined;
}
