// The labeling view (Streamlit components v2). The browser holds the line on screen and a prefetched
// batch, paints the next line in the same frame as the key press and sends each action as an event
// bound to its line id, with an id of its own so a resend is never stored twice. Unsent events live in
// localStorage until the server says they are stored, so a reload or a lost connection loses nothing.
// All user text is set with textContent: never parsed as HTML.

const BUFFER_LOW = 30;      // ask for more lines when fewer than this are prefetched
const BUFFER_FULL = 60;
const MAX_EVENTS_PER_SYNC = 200;
const HEARTBEAT_MS = 10000; // keeps this tab's claims alive and the model's status fresh while the page is open
const RETRAIN_POLL_MS = 400; // while a retrain runs: its new suggestions replace the prefetched ones as soon as they exist
const LIVENESS_MS = 250;

function uuid() {
  if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

function nowIso() { return new Date().toISOString(); }

function storageGet(store, key, fallback) {
  try { const v = store.getItem(key); return v === null ? fallback : JSON.parse(v); } catch (e) { return fallback; }
}

function storageSet(store, key, value) {
  try { store.setItem(key, JSON.stringify(value)); return true; } catch (e) { return false; }
}

class LabelView {
  constructor() {
    this.cfg = null;
    this.root = null;
    this.el = {};
    this.current = null;
    this.buffer = [];
    this.history = [];
    this.pending = [];
    this.answered = new Set();
    this.skipped = new Set();
    this.localLabels = new Map();
    this.flags = new Map();
    this.inflight = false;
    this.rerank = false;
    this.done = false;
    this.mode = null;        // null | "edit" | "flag" | "jump" | "help"
    this.flagKind = null;
    this.groupOn = false;
    this.modelVersion = null;
    this.pollTimer = null;
    // "Are you sure?" is said once per kind of correction (the model's class → the person's), not on every
    // consistent one: a team teaching a convention hears it the first time only.
    this.warned = new Set(storageGet(sessionStorage, "scriptlabel:warned", []));
    this.lastError = null;
    this.retryTimer = null;
    this.heartbeat = null;
    this.labelTimes = [];
    this.started = false;
    this.ready = null;
    this.paints = (window.__scriptlabelPaints = window.__scriptlabelPaints || []);
    this.shown = (window.__scriptlabelShown = window.__scriptlabelShown || []);
    this.onKey = this.onKey.bind(this);
    this.channel = ("BroadcastChannel" in window) ? new BroadcastChannel("scriptlabel-tabs") : null;
    if (this.channel) {
      this.channel.onmessage = (m) => {
        const d = m.data || {};
        if (d.type === "alive?" && this.tab && d.tab === this.tab && d.from !== this.instance) {
          this.channel.postMessage({ type: "alive", tab: this.tab, from: this.instance });
        }
      };
    }
    this.instance = uuid();
    window.addEventListener("pagehide", () => this.release());
  }

  // --- set-up ---------------------------------------------------------------------------------

  key(suffix) { return `scriptlabel:${suffix}:${this.cfg.database}:${this.tab}`; }

  async start(cfg) {
    const same = this.cfg && ["database", "annotator", "script_id", "strategy"].every((k) => this.cfg[k] === cfg[k]);
    const sameDatabase = this.cfg && this.cfg.database === cfg.database;
    this.cfg = cfg;
    // Page images are plain <img>/CSS requests that carry no header: an OIDC user's token goes in a cookie too.
    if (cfg.session) document.cookie = `scriptlabel_session=${encodeURIComponent(cfg.session)}; path=/api/label; SameSite=Lax`;
    if (same) { this.sync(); return; }  // shown again (back from another page): catch up with the server
    if (!this.tab || !sameDatabase) this.tab = await this.ownTabId();
    // Mounted after a name was typed (Enter) or a script chosen: that field still has the focus and
    // would take the next keys. The person asked for labeling, so keys come here.
    const active = document.activeElement;
    if (active && active !== document.body && this.isField(active)) active.blur();
    this.pending = this.loadPending();
    this.skipped = new Set(storageGet(sessionStorage, this.key("skipped"), []));
    this.current = null;
    this.buffer = [];
    this.done = false;
    this.groupOn = false;
    this.render();
    this.adoptOrphans();
    this.sync();
    clearInterval(this.heartbeat);
    this.heartbeat = setInterval(() => this.sync(), HEARTBEAT_MS);
  }

  async ownTabId() {
    // sessionStorage survives a reload of this tab (its unsent events and claims stay its own) but is
    // copied into a duplicated tab: if another live tab answers to our id, take a new one.
    let tab = sessionStorage.getItem("scriptlabel:tab");
    if (tab && this.channel && await this.isAlive(tab)) tab = null;
    if (!tab) { tab = uuid(); sessionStorage.setItem("scriptlabel:tab", tab); }
    return tab;
  }

  isAlive(tab) {
    return new Promise((resolve) => {
      if (!this.channel) { resolve(false); return; }
      const listener = (m) => { if (m.data && m.data.type === "alive" && m.data.tab === tab) { done(true); } };
      const done = (v) => { this.channel.removeEventListener("message", listener); resolve(v); };
      this.channel.addEventListener("message", listener);
      this.channel.postMessage({ type: "alive?", tab, from: this.instance });
      setTimeout(() => done(false), LIVENESS_MS);
    });
  }

  loadPending() {
    const saved = storageGet(localStorage, this.key("pending"), null);
    if (!saved || saved.annotator !== this.cfg.annotator) {
      if (saved && saved.events && saved.events.length) this.persistPendingAs(saved.annotator, saved.events, uuid());
      return [];
    }
    return saved.events || [];
  }

  savePending() {
    const ok = storageSet(localStorage, this.key("pending"), { annotator: this.cfg.annotator, events: this.pending });
    if (!ok && this.pending.length) this.lastError = "this browser's storage is full: keep the page open until the labels are saved";
  }

  persistPendingAs(annotator, events, tab) {
    storageSet(localStorage, `scriptlabel:pending:${this.cfg.database}:${tab}`, { annotator, events });
  }

  async adoptOrphans() {
    // Events left by a tab that was closed before they were stored: send them under their own name.
    const prefix = `scriptlabel:pending:${this.cfg.database}:`;
    const keys = [];
    for (let i = 0; i < localStorage.length; i++) {
      const k = localStorage.key(i);
      if (k && k.startsWith(prefix) && k !== this.key("pending")) keys.push(k);
    }
    for (const k of keys) {
      const tab = k.slice(prefix.length);
      if (await this.isAlive(tab)) continue;
      const saved = storageGet(localStorage, k, null);
      if (!saved || !saved.events || !saved.events.length) { localStorage.removeItem(k); continue; }
      // Signed in, the server labels under the session's name: another person's unsent keys wait for them.
      if (this.cfg.signed_in && saved.annotator !== this.cfg.annotator) continue;
      let events = saved.events;
      while (events.length) {
        const body = { database: this.cfg.database, annotator: saved.annotator, tab: tab.slice(0, 80),
                       script_id: null, strategy: "margin", events: events.slice(0, MAX_EVENTS_PER_SYNC), held: [], want: 0 };
        const resp = await this.post("sync", body).catch(() => null);
        if (!resp || !resp.results) return;  // try again on the next start
        const acked = new Set(resp.results.map((r) => r.client_event_id));
        events = events.filter((e) => !acked.has(e.client_event_id));
        storageSet(localStorage, k, { annotator: saved.annotator, events });
      }
      localStorage.removeItem(k);
    }
  }

  attach(parent, ui) {
    this.ui = ui;
    if (this.root === parent && this.el.view) return;
    this.root = parent;
    const q = (role) => parent.querySelector(`[data-role="${role}"]`);
    const roles = ["where", "progress", "rate", "model", "save", "crop", "mark", "text", "edited", "edit-box",
      "edit-input", "suggest", "group", "group-title", "group-lines", "flag-box", "flag-kind", "flag-note",
      "jump-box", "jump-input", "keys", "message", "news", "context", "help", "help-keys", "help-open"];
    this.el = { view: parent.querySelector(".sl-view") };
    for (const r of roles) this.el[r] = q(r);
    this.buildKeys();
    this.el["help-open"].addEventListener("click", () => this.toggleHelp());
    this.render();
  }

  buildKeys() {
    const keys = this.el.keys;
    keys.replaceChildren();
    const add = (k, title, action, extra) => {
      const b = document.createElement("button");
      b.className = "sl-key" + (extra ? " sl-action" : "");
      b.tabIndex = -1;
      b.dataset.key = k;
      const kbd = document.createElement("kbd");
      kbd.textContent = k === "Enter" ? "⏎" : k;
      b.append(kbd, document.createTextNode(title));
      b.addEventListener("mousedown", (e) => e.preventDefault());  // a click never takes keyboard focus
      b.addEventListener("click", () => { const t = performance.now(); action(); this.afterPaint(t); });
      keys.append(b);
      return b;
    };
    this.labelButtons = {};
    for (const [k, label] of Object.entries(this.ui.keys)) {
      this.labelButtons[label] = add(k, this.ui.titles[label], () => this.label(label));
    }
    add("Enter", "accept", () => this.accept(), true);
    add("s", "skip", () => this.skip(), true);
    add("u", "undo", () => this.undo(), true);
    add("e", "edit text", () => this.openEdit(), true);
    add("f", "flag", () => this.openFlag(), true);
    add("j", "jump", () => this.openJump(), true);
    add("g", "all identical", () => this.toggleGroup(), true);
    const help = this.el["help-keys"];
    help.replaceChildren();
    const rows = [...Object.entries(this.ui.keys).map(([k, l]) => [k, `label as ${this.ui.titles[l]}`]),
      ["Enter", "accept the suggestion"], ["s", "skip (this tab will not show it again)"],
      ["u / Backspace", "undo your last label and show that line again"],
      ["e", "edit the line's text (Enter saves, Esc cancels)"], ["f", "flag: 1 unsure, 2 bad OCR, 0 clear; a note; Enter"],
      ["j", "jump to a line number, or p12 for a page"], ["g", "also label every identical line (shown first)"],
      ["?", "this help"], ["Esc", "close whatever is open"]];
    for (const [k, what] of rows) {
      const tr = document.createElement("tr");
      const a = document.createElement("td"); const kbd = document.createElement("kbd"); kbd.textContent = k; a.append(kbd);
      const b = document.createElement("td"); b.textContent = what;
      tr.append(a, b); help.append(tr);
    }
  }

  // --- keys -----------------------------------------------------------------------------------

  onKey(e) {
    if (!this.el.view || !this.el.view.isConnected) return;
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    const target = e.composedPath ? e.composedPath()[0] : e.target;
    const mine = this.root && target && this.root.contains && this.root.contains(target);
    if (this.mode && this.mode !== "help") {
      if (e.key === "Escape") { this.stop(e); this.closeModes(); return; }
      if (this.mode === "flag" && !this.flagKind) {
        this.stop(e);
        if (e.key === "1" || e.key === "2" || e.key === "0") this.chooseFlag({ 1: "unsure", 2: "bad_ocr", 0: "cleared" }[e.key]);
        return;
      }
      if (e.key === "Enter" && mine) { this.stop(e); this.submitMode(); return; }
      if (mine) return;  // typing into the field the person opened
      this.stop(e);
      return;
    }
    if (target && !mine && this.isField(target)) {
      // A field of the page outside this view (the annotator's name, the script or order picker).
      const combo = target.getAttribute("role") === "combobox" || target.closest && target.closest("[data-baseweb='select']");
      if (combo && target.getAttribute("aria-expanded") !== "true") {
        target.blur();  // a picker that is closed gives the keys back to labeling
      } else {
        if (e.key === "Enter" || e.key === "Escape") setTimeout(() => target.blur(), 0);
        return;
      }
    }
    if (e.repeat) { if (this.handles(e.key)) this.stop(e); return; }
    const t0 = e.timeStamp || performance.now();
    const k = e.key.length === 1 ? e.key.toLowerCase() : e.key;
    let handled = true;
    if (this.mode === "help") {
      if (k === "Escape" || k === "?") this.toggleHelp(); else handled = this.handles(e.key);
      if (handled) this.stop(e);
      return;
    }
    if (this.cfg.keys[k]) this.label(this.cfg.keys[k]);
    else if (k === "Enter") this.accept();
    else if (k === "s") this.skip();
    else if (k === "u" || k === "Backspace") this.undo();
    else if (k === "e") this.openEdit();
    else if (k === "f") this.openFlag();
    else if (k === "j") this.openJump();
    else if (k === "g") this.toggleGroup();
    else if (e.key === "?") this.toggleHelp();
    else if (k === "Escape") this.closeModes();
    else handled = false;
    if (handled) { this.stop(e); this.afterPaint(t0); }
  }

  handles(key) {
    const k = key.length === 1 ? key.toLowerCase() : key;
    return Boolean(this.cfg.keys[k]) || ["Enter", "s", "u", "Backspace", "e", "f", "j", "g", "?", "Escape"].includes(k);
  }

  isField(t) { return t.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(t.tagName); }

  stop(e) { e.preventDefault(); e.stopPropagation(); e.stopImmediatePropagation(); }

  afterPaint(t0) {
    // Time from the key press to the frame that shows its result (rAF runs just before the paint).
    requestAnimationFrame(() => setTimeout(() => {
      this.paints.push(performance.now() - t0);
      if (this.paints.length > 20000) this.paints.splice(0, 10000);
    }, 0));
  }

  // --- actions --------------------------------------------------------------------------------

  event(action, item, extra) {
    return Object.assign({ client_event_id: uuid(), line_id: item.line_id, action,
      model_version_shown: item.model_version ?? null, suggestion_shown: item.suggestion ?? null,
      shown_at: item.shown_at || null, answered_at: nowIso() }, extra || {});
  }

  push(ev) {
    this.pending.push(ev);
    this.savePending();
    this.sync();
  }

  label(label) {
    const item = this.current;
    if (!item) return;
    const also = this.groupOn ? item.group.map((g) => g.line_id) : [];
    const review = this.cfg.strategy === "review";
    const ev = this.event("label", item, Object.assign({ label, also_line_ids: also }, review ? { review: true } : {}));
    for (const id of [item.line_id, ...also]) { this.answered.add(id); this.localLabels.set(id, label); }
    this.history.push({ item, eventId: ev.client_event_id, lineIds: [item.line_id, ...also], label });
    if (this.history.length > 500) this.history.shift();
    this.labelTimes.push(Date.now());
    if (also.length) { const gone = new Set(also); this.buffer = this.buffer.filter((b) => !gone.has(b.line_id)); }
    this.shown.push([item.line_id, label]);
    this.next();
    this.push(ev);
    const sure = this.cfg.sure_confidence || 0.97;
    if (review) {
      this.say(label === item.label ? `Confirmed: line ${item.line_no} stays ${this.cfg.titles[label]}.`
        : `Fixed: line ${item.line_no} is now ${this.cfg.titles[label]} (was ${this.cfg.titles[item.label] || "unlabeled"}).`);
    } else if (item.suggestion && item.suggestion_source !== "rule" && label !== item.suggestion
               && (item.confidence || 0) >= sure && !this.warned.has(`${item.suggestion}>${label}`)) {
      // Not a block: a slip is one key away from being undone.
      this.warned.add(`${item.suggestion}>${label}`);
      storageSet(sessionStorage, "scriptlabel:warned", [...this.warned]);
      this.say(`Are you sure? The model was ${Math.round(item.confidence * 100)}% sure line ${item.line_no} is `
        + `${this.cfg.titles[item.suggestion]}; you chose ${this.cfg.titles[label]}. Press u to undo.`, "warn");
    } else if (this.el.message.dataset.kind !== "error") {
      this.say("");
    }
  }

  accept() {
    if (!this.current) return;
    if (!this.current.suggestion) { this.say("No suggestion for this line yet: press a label key.", "error"); return; }
    this.label(this.current.suggestion);
  }

  skip() {
    if (!this.current) return;
    this.skipped.add(this.current.line_id);
    storageSet(sessionStorage, this.key("skipped"), [...this.skipped].slice(-5000));
    this.next();
    this.sync();
  }

  undo() {
    const last = this.history.pop();
    if (!last) { this.say("Nothing to undo in this tab.", "error"); return; }
    const ev = this.event("undo", last.item, { undoes: last.eventId });
    for (const id of last.lineIds) { this.localLabels.delete(id); this.answered.delete(id); }
    if (this.current) this.buffer.unshift(this.current);
    this.current = Object.assign({}, last.item, { label: null, shown_at: nowIso() });
    this.groupOn = false;
    this.say(`Undone: ${this.cfg.titles[last.label]} on line ${last.item.line_no}${last.lineIds.length > 1 ? ` and ${last.lineIds.length - 1} identical lines` : ""}.`);
    this.render();
    this.push(ev);
  }

  next() {
    this.current = this.buffer.shift() || null;
    if (this.current) this.current.shown_at = nowIso();
    this.groupOn = false;
    this.render();
  }

  toggleGroup() {
    if (!this.current || !this.current.group.length) { this.say("This line has no identical lines.", "error"); return; }
    this.groupOn = !this.groupOn;
    this.render();
  }

  openEdit() {
    if (!this.current) return;
    this.mode = "edit";
    this.el["edit-box"].hidden = false;
    const input = this.el["edit-input"];
    input.value = this.current.text;
    input.focus();
    input.select();
  }

  openFlag() {
    if (!this.current) return;
    this.mode = "flag";
    this.flagKind = null;
    this.el["flag-box"].hidden = false;
    this.el["flag-kind"].textContent = "";
    this.el["flag-note"].hidden = true;
  }

  chooseFlag(kind) {
    this.flagKind = kind;
    this.el["flag-kind"].textContent = { unsure: "Unsure", bad_ocr: "Bad OCR", cleared: "Clear the flag" }[kind];
    const note = this.el["flag-note"];
    note.hidden = false;
    note.value = "";
    note.focus();
  }

  openJump() {
    if (!this.current && !this.cfg.script_id) { this.say("Choose a script to jump in.", "error"); return; }
    this.mode = "jump";
    this.el["jump-box"].hidden = false;
    const input = this.el["jump-input"];
    input.value = "";
    input.focus();
  }

  toggleHelp() {
    const open = this.mode !== "help";
    this.closeModes();
    if (open) this.mode = "help";
    this.el.help.hidden = !open;
  }

  closeModes() {
    this.mode = null;
    this.flagKind = null;
    for (const r of ["edit-box", "flag-box", "jump-box", "help"]) this.el[r].hidden = true;
    const active = this.root && this.root.activeElement;
    if (active && active.blur) active.blur();
    if (document.activeElement && this.isField(document.activeElement)) document.activeElement.blur();
  }

  submitMode() {
    const item = this.current;
    if (this.mode === "edit" && item) {
      const text = this.el["edit-input"].value.trim();
      if (text && text !== item.text) {
        if (!item.original_text) item.original_text = item.text;
        item.text = text;
        this.push(this.event("edit", item, { text }));
        this.say("Text corrected; the original is kept.");
      }
    } else if (this.mode === "flag" && item && this.flagKind) {
      const note = this.el["flag-note"].value.trim();
      this.push(this.event("flag", item, { flag: this.flagKind, note }));
      this.flags.set(item.line_id, this.flagKind === "cleared" ? null : this.flagKind);
      this.say(this.flagKind === "cleared" ? "Flag cleared." : `Flagged as ${this.flagKind === "bad_ocr" ? "bad OCR" : "unsure"}.`);
    } else if (this.mode === "jump") {
      this.jump(this.el["jump-input"].value.trim());
    }
    this.closeModes();
    this.render();
  }

  async jump(where) {
    const m = /^(p(?:age)?\s*)?(\d+)$/i.exec(where);
    if (!m) { this.say("Type a line number, or p12 for page 12.", "error"); return; }
    const script = (this.current && this.current.script_id) || this.cfg.script_id;
    const params = new URLSearchParams({ script_id: script });
    params.set(m[1] ? "page" : "line_no", m[2]);
    try {
      const resp = await fetch(`${this.cfg.api}/jump?${params}`, { headers: this.headers() });
      const body = await resp.json();
      if (!resp.ok) { this.say(body.error || "Could not find that line.", "error"); return; }
      if (this.current) this.buffer.unshift(this.current);
      this.current = Object.assign(body.item, { shown_at: nowIso() });
      this.buffer = this.buffer.filter((b) => b.line_id !== this.current.line_id);
      this.groupOn = false;
      this.say(body.item.label ? `Line ${body.item.line_no} is labeled ${this.cfg.titles[body.item.label]}; a key relabels it.` : "");
      this.render();
    } catch (err) {
      this.say("Could not reach the server to jump; try again.", "error");
    }
  }

  say(text, kind) {
    if (!this.el.message) return;
    this.el.message.textContent = text || "";
    this.el.message.dataset.kind = kind || "";
  }

  // --- talking to the server ------------------------------------------------------------------

  headers(extra) {
    // An OIDC user's session token (the app's own sign-in uses an HttpOnly cookie the browser sends itself).
    const h = Object.assign({ "X-Scriptlabel": "1" }, extra || {});
    if (this.cfg && this.cfg.session) h["X-Scriptlabel-Session"] = this.cfg.session;
    return h;
  }

  async post(path, body) {
    const resp = await fetch(`${this.cfg.api}/${path}`, {
      method: "POST", headers: this.headers({ "Content-Type": "application/json" }), body: JSON.stringify(body),
    });
    let payload = null;
    try { payload = await resp.json(); } catch (e) { payload = { error: "the server's answer could not be read" }; }
    if (!resp.ok) { const err = new Error(payload.error || `HTTP ${resp.status}`); err.status = resp.status; err.payload = payload; throw err; }
    return payload;
  }

  held() { return [this.current, ...this.buffer].filter(Boolean).map((i) => i.line_id); }

  async sync() {
    if (!this.cfg || !this.tab) return;
    if (this.inflight) { this.again = true; return; }
    this.inflight = true;
    try {
      do {
        this.again = false;
        const events = this.pending.slice(0, MAX_EVENTS_PER_SYNC);
        const rerank = this.rerank;
        this.rerank = false;
        const need = !this.done && (this.buffer.length < BUFFER_LOW || rerank);
        const held = rerank ? [this.current].filter(Boolean).map((i) => i.line_id) : this.held();
        const body = {
          database: this.cfg.database, annotator: this.cfg.annotator, tab: this.tab, script_id: this.cfg.script_id,
          strategy: this.cfg.strategy, events, held,
          skipped: [...this.skipped, ...this.answered].slice(-5000),
          want: need ? (rerank ? BUFFER_FULL : BUFFER_FULL - this.buffer.length) : 0,
        };
        let resp;
        try {
          resp = await this.post("sync", body);
        } catch (err) {
          this.failed(err);
          return;
        }
        this.lastError = null;
        this.retryDelay = 0;
        this.received(resp, events, rerank && body.want > 0);
      } while (this.again || (this.pending.length && !this.lastError));
    } finally {
      this.inflight = false;
      this.renderStatus();
    }
  }

  failed(err) {
    if (err.status === 401) {
      this.lastError = `Your sign-in has ended: reload the page to sign in again (${this.pending.length} label(s) kept in this browser).`;
    } else if (err.status === 409) {
      this.lastError = "This page belongs to another database now: reload the page (your unsent labels are kept).";
    } else if (err.status === 400 || err.status === 403) {
      this.lastError = `The server refused the labels: ${err.message}. They are kept in this browser.`;
    } else {
      this.lastError = `Can't reach the server: ${this.pending.length} label(s) kept in this browser, retrying…`;
      this.retryDelay = Math.min(10000, (this.retryDelay || 500) * 2);
      clearTimeout(this.retryTimer);
      this.retryTimer = setTimeout(() => this.sync(), this.retryDelay);
    }
    this.renderStatus();
  }

  received(resp, sent, rerank) {
    const acked = new Map(resp.results.map((r) => [r.client_event_id, r]));
    if (acked.size) {
      this.pending = this.pending.filter((e) => !acked.has(e.client_event_id));
      this.savePending();
      let gone = 0, unknown = 0;
      for (const ev of sent) {
        const r = acked.get(ev.client_event_id);
        if (!r) continue;
        if (ev.action === "label") for (const id of [ev.line_id, ...(ev.also_line_ids || [])]) this.answered.delete(id);
        if (r.status === "line_gone") gone += 1;
        if (r.status === "unknown_label") unknown += 1;
      }
      if (unknown) this.say(`${unknown} label(s) used a class the project's scheme no longer has and were not stored: reload the page for its keys.`, "error");
      if (gone) this.say(`${gone} label(s) were for lines that no longer exist (their script was deleted) and were not stored.`, "error");
    }
    const version = resp.model ? resp.model.version : null;
    if (this.modelVersion !== null && version !== this.modelVersion) {  // new suggestions
      this.rerank = true; this.again = true;
      this.announce(resp.model);
    }
    this.modelVersion = version;
    this.pollWhileRetraining(resp.model);
    this.model = resp.model;
    this.progress = resp.progress;
    const drop = new Set(resp.drop || []);
    const excluded = (i) => this.answered.has(i.line_id) || this.skipped.has(i.line_id)
      || (this.current && this.current.line_id === i.line_id);
    let fresh;
    if (rerank) {  // the new ranking replaces the prefetched batch
      fresh = (resp.items || []).filter((i) => !excluded(i));
      this.buffer = fresh;
    } else {
      const known = new Set(this.held());
      fresh = (resp.items || []).filter((i) => !excluded(i) && !known.has(i.line_id));
      this.buffer = this.buffer.filter((b) => !drop.has(b.line_id)).concat(fresh);
    }
    for (const item of fresh) if (item.image) new Image().src = this.imageUrl(item);
    this.done = Boolean(resp.done) && !this.buffer.length;
    if (!this.current && this.buffer.length) this.next();
    else this.render();
  }

  announce(model) {
    // "v4: 13 suggestions on this script changed to dialogue" — what the new version did where the person works.
    const c = model && model.changed;
    if (!this.el.news) return;
    if (!c) { this.el.news.textContent = `v${model.version}: new suggestions.`; return; }
    const where = this.cfg.script_id && c.script_id === this.cfg.script_id ? "this script" : "the script being labeled";
    const to = Object.entries(c.to || {}).sort((a, b) => b[1] - a[1]);
    const named = to.slice(0, 2).map(([label, n]) => (to.length > 1 ? `${n} to ` : "") + (this.cfg.titles[label] || label));
    this.el.news.textContent = c.n
      ? `v${model.version}: ${c.n} suggestion${c.n === 1 ? "" : "s"} on ${where} changed${to.length > 1 ? ": " : " to "}`
        + named.join(", ") + (to.length > 2 ? ", …" : "") + "."
      : `v${model.version}: no suggestion on ${where} changed.`;
  }

  pollWhileRetraining(model) {
    // The heartbeat is slow; while a retrain is queued or running, ask again soon so the new version's
    // suggestions replace the prefetched ones as soon as they exist.
    const run = model && model.run;
    const busy = run && (run.status === "queued" || run.status === "running");
    clearTimeout(this.pollTimer);
    if (busy) this.pollTimer = setTimeout(() => this.sync(), RETRAIN_POLL_MS);
  }

  release() {
    if (!this.cfg || !this.tab) return;
    try {
      fetch(`${this.cfg.api}/release`, { method: "POST", keepalive: true,
        headers: this.headers({ "Content-Type": "application/json" }),
        body: JSON.stringify({ annotator: this.cfg.annotator, tab: this.tab }) });
    } catch (e) { /* the claims expire by themselves */ }
  }

  imageUrl(item) { return `${this.cfg.api}/page/${item.script_id}/${item.page}`; }

  // --- drawing --------------------------------------------------------------------------------

  render() {
    if (!this.el.view) return;
    const item = this.current;
    this.renderStatus();
    if (!item) {
      this.el.view.dataset.state = this.done ? "done" : "loading";
      this.el.where.textContent = this.done ? "Done" : "Loading the queue…";
      if (this.done) this.say(this.pending.length ? "Nothing left in the queue; saving your last labels…"
        : "Nothing left in the queue: every line here is labeled (or being labeled by someone else).", "done");
      this.el.text.textContent = "";
      this.el.suggest.textContent = "";
      this.el.context.replaceChildren();
      this.el.crop.hidden = true;
      this.el.group.hidden = true;
      return;
    }
    this.el.view.dataset.state = "labeling";
    if (this.el.message.dataset.kind === "done") this.say("");
    this.el.where.textContent = `${item.script_title} · page ${item.page} · line ${item.line_no}`;
    this.el.view.dataset.lineId = String(item.line_id);
    this.el.text.textContent = item.text;
    const flag = this.flags.has(item.line_id) ? this.flags.get(item.line_id) : null;
    this.el.edited.textContent = [item.original_text ? `edited · original: ${item.original_text}` : "",
      flag ? `flagged: ${flag === "bad_ocr" ? "bad OCR" : flag}` : ""].filter(Boolean).join(" · ");
    this.drawCrop(item);
    const s = this.el.suggest;
    s.replaceChildren();
    if (item.label && this.cfg.strategy === "review") {
      s.append(`Review: labeled ${this.cfg.titles[item.label]}; the model disagrees. `
        + "The same key confirms it, another key fixes it. ");
    } else if (item.label) {
      s.append(`Labeled ${this.cfg.titles[item.label]} already; a key relabels it. `);
    }
    if (item.suggestion && item.suggestion_source === "rule" && item.rule) {
      // A rule people wrote: how often people agreed with it where they labeled its lines.
      const b = document.createElement("b"); b.textContent = this.cfg.titles[item.suggestion] || item.suggestion;
      const r = item.rule;
      const record = r.accuracy === null ? "no labeled line to check it on yet"
        : `${Math.round(r.accuracy * 100)}% right on ${r.checked} labeled line${r.checked === 1 ? "" : "s"}`;
      s.append("Rule suggests: ", b, ` · rule #${r.rule_id}, ${record} — Enter accepts`);
    } else if (item.suggestion) {
      const b = document.createElement("b"); b.textContent = this.cfg.titles[item.suggestion] || item.suggestion;
      s.append("Suggestion: ", b, ` · ${Math.round((item.confidence || 0) * 100)}% sure — Enter accepts`);
    } else {
      s.append("No suggestion yet: the model trains after the first labels.");
    }
    for (const [label, button] of Object.entries(this.labelButtons || {})) button.dataset.suggested = label === item.suggestion ? "1" : "0";
    this.drawGroup(item);
    this.drawContext(item);
    this.shownAt = performance.now();
  }

  drawCrop(item) {
    const crop = this.el.crop;
    if (!item.image || !item.box || !item.page_size) { crop.hidden = true; return; }
    crop.hidden = false;
    const width = crop.clientWidth || 640;
    const [pw, ph] = item.page_size;
    const [x0, y0, x1, y1] = item.box;
    // Show the printed area (about 1 inch in from each edge, wider if the line is), not the paper.
    const left = Math.max(0, Math.min(x0, 72) - 8);
    const right = Math.min(pw, Math.max(x1, pw - 72) + 8);
    const s = width / (right - left);
    const ctx = 40;
    const top = Math.max(0, y0 - ctx);
    const bottom = Math.min(ph, y1 + ctx);
    crop.style.height = `${Math.max(24, (bottom - top) * s)}px`;
    crop.style.backgroundImage = `url("${this.imageUrl(item)}")`;
    crop.style.backgroundSize = `${pw * s}px ${ph * s}px`;
    crop.style.backgroundPosition = `${-left * s}px ${-top * s}px`;
    const mark = this.el.mark;
    mark.style.left = `${(x0 - left) * s - 3}px`;
    mark.style.top = `${(y0 - top) * s - 2}px`;
    mark.style.width = `${(x1 - x0) * s + 6}px`;
    mark.style.height = `${(y1 - y0) * s + 4}px`;
  }

  drawGroup(item) {
    const box = this.el.group;
    if (!item.group || !item.group.length) { box.hidden = true; return; }
    box.hidden = false;
    const n = item.group.length;
    this.el["group-title"].textContent = this.groupOn
      ? `The next label also goes to these ${n} identical line(s) (g turns it off):`
      : `${n} identical line(s) elsewhere (same text, same indent) — press g to label them all at once.`;
    const list = this.el["group-lines"];
    list.replaceChildren();
    list.hidden = !this.groupOn;
    if (this.groupOn) {
      for (const g of item.group) {
        const li = document.createElement("li");
        li.textContent = `p${g.page} l${g.line_no}: ${g.text}`;
        list.append(li);
      }
    }
  }

  drawContext(item) {
    const body = this.el.context;
    body.replaceChildren();
    for (const c of item.context || []) {
      const tr = document.createElement("tr");
      tr.dataset.current = c.current ? "1" : "0";
      const local = this.localLabels.get(c.line_id);
      const label = local || c.label;
      const no = document.createElement("td"); no.className = "sl-no"; no.textContent = c.line_no;
      const lab = document.createElement("td"); lab.className = "sl-lab";
      if (c.current) lab.textContent = "▶";
      else if (label) lab.textContent = this.cfg.titles[label];
      else if (c.suggestion) { lab.textContent = `(${this.cfg.titles[c.suggestion]})`; lab.dataset.source = "model"; }
      const txt = document.createElement("td"); txt.className = "sl-txt"; txt.textContent = c.text;
      tr.append(no, lab, txt);
      body.append(tr);
    }
  }

  renderStatus() {
    if (!this.el.view) return;
    const p = this.progress;
    this.el.progress.textContent = p ? `${p.labeled} of ${p.total} lines labeled` : "";
    const hour = Date.now() - 3600e3;
    this.labelTimes = this.labelTimes.filter((t) => t > hour);
    if (this.labelTimes.length >= 5) {
      const span = Math.max(60e3, Date.now() - this.labelTimes[0]);
      this.el.rate.textContent = `≈ ${Math.round(this.labelTimes.length / span * 3600e3)} labels/h`;
    } else this.el.rate.textContent = "";
    const m = this.model;
    if (m) {
      const run = m.run && (m.run.status === "queued" || m.run.status === "running") ? " · retraining…"
        : m.run && m.run.status === "failed" ? " · last retrain failed"
        : m.run && m.run.candidate ? " · last retrain kept as a candidate (Models page)" : "";
      this.el.model.textContent = (m.version ? `model v${m.version}` : "shipped model")
        + (m.pinned ? " · pinned" : "") + run;
      this.el.model.title = m.run && m.run.error ? m.run.error : "";
      this.el.model.dataset.kind = run.includes("retraining") ? "training" : run.includes("failed") ? "failed"
        : run.includes("candidate") ? "candidate" : "current";
    }
    const save = this.el.save;
    if (this.lastError) { save.textContent = this.lastError; save.dataset.kind = "error"; }
    else if (this.pending.length) { save.textContent = `saving ${this.pending.length}…`; save.dataset.kind = "waiting"; }
    else { save.textContent = "all labels saved"; save.dataset.kind = "saved"; }
  }
}

export default function (component) {
  const { data, parentElement } = component;
  const view = (window.__scriptlabelView = window.__scriptlabelView || new LabelView());
  if (!data || !data.database) return;
  view.attach(parentElement, data);
  view.start(data);
  window.removeEventListener("keydown", view.onKey, true);
  window.addEventListener("keydown", view.onKey, true);
  // Unmounted (another page): onKey ignores keys while the view is not in the document; unsent events
  // keep being sent in the background.
  return undefined;
}
