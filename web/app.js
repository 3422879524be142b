// mamori placeholder console: searches /api/v1/events with the bearer token
// the user pastes (kept in localStorage) and shows a results table. Every
// value from an event is put into the page with textContent, never as HTML:
// events carry text that anyone on the network could have sent.
"use strict";

(function () {
  const TOKEN_KEY = "mamori.token";
  const $ = (id) => document.getElementById(id);
  const els = {
    tokenForm: $("token-form"), token: $("token"), forget: $("token-forget"),
    health: $("health"), form: $("search"), q: $("q"), filters: $("filters"),
    range: $("range"), custom: $("custom"), from: $("from"), to: $("to"),
    limit: $("limit"), order: $("order"), message: $("message"),
    summary: $("summary"), prev: $("prev"), next: $("next"),
    tbody: document.querySelector("#results tbody"),
  };
  // The search being shown; paging keeps its absolute time bounds so pages
  // do not shift while new events arrive.
  let current = null;
  let inflight = null;

  function getToken() {
    try { return localStorage.getItem(TOKEN_KEY) || ""; } catch (e) { return ""; }
  }
  function setToken(t) {
    try {
      if (t) localStorage.setItem(TOKEN_KEY, t); else localStorage.removeItem(TOKEN_KEY);
    } catch (e) { /* storage disabled: the token lives for this page only */ }
  }

  function showMessage(text) {
    els.message.textContent = text;
    els.message.hidden = !text;
  }

  // "host.name=web1 message=\"a b\"" -> [["host.name","web1"], ["message","a b"]]
  function parseFilters(text) {
    const out = [];
    const re = /\s*([^\s=]+)=("([^"]*)"|\S*)/y;
    let pos = 0;
    text = text.trim();
    while (pos < text.length) {
      re.lastIndex = pos;
      const m = re.exec(text);
      if (!m || (m[3] === undefined && m[2] === "")) {
        throw new Error("field filters are name=value pairs separated by spaces (near \"" +
                        text.slice(pos, pos + 20).trim() + "\")");
      }
      out.push([m[1], m[3] !== undefined ? m[3] : m[2]]);
      pos = re.lastIndex;
      while (pos < text.length && /\s/.test(text[pos])) pos++;
    }
    return out;
  }

  function timeBounds() {
    const r = els.range.value;
    if (r === "all") return [null, null];
    if (r === "custom") {
      const f = els.from.value ? new Date(els.from.value) : null;
      const t = els.to.value ? new Date(els.to.value) : null;
      if ((f && isNaN(f)) || (t && isNaN(t))) throw new Error("the custom time range is not a valid date");
      return [f ? f.toISOString() : null, t ? t.toISOString() : null];
    }
    return [new Date(Date.now() - Number(r) * 1000).toISOString(), null];
  }

  function buildSearch() {
    const [from, to] = timeBounds();
    return {
      q: els.q.value.trim(),
      filters: parseFilters(els.filters.value),
      from: from, to: to,
      limit: Number(els.limit.value),
      order: els.order.value,
      offset: 0,
    };
  }

  function queryString(s) {
    const p = new URLSearchParams();
    if (s.q) p.append("q", s.q);
    if (s.from) p.append("from", s.from);
    if (s.to) p.append("to", s.to);
    for (const [k, v] of s.filters) p.append("filter", k + ":" + v);
    p.append("limit", String(s.limit));
    if (s.offset) p.append("offset", String(s.offset));
    if (s.order !== "desc") p.append("order", s.order);
    return p.toString();
  }

  // The search form's state in the URL fragment, so a reload or a shared
  // link shows the same search (the token is never put there).
  function saveHash() {
    const p = new URLSearchParams();
    if (els.q.value) p.set("q", els.q.value);
    if (els.filters.value) p.set("f", els.filters.value);
    p.set("r", els.range.value);
    if (els.range.value === "custom") {
      if (els.from.value) p.set("from", els.from.value);
      if (els.to.value) p.set("to", els.to.value);
    }
    if (els.limit.value !== "100") p.set("limit", els.limit.value);
    if (els.order.value !== "desc") p.set("order", els.order.value);
    history.replaceState(null, "", "#" + p.toString());
  }

  function loadHash() {
    const p = new URLSearchParams(location.hash.slice(1));
    const setSel = (sel, v) => {
      if (v !== null && [...sel.options].some((o) => o.value === v)) sel.value = v;
    };
    if (p.has("q")) els.q.value = p.get("q");
    if (p.has("f")) els.filters.value = p.get("f");
    setSel(els.range, p.get("r"));
    if (p.has("from")) els.from.value = p.get("from");
    if (p.has("to")) els.to.value = p.get("to");
    setSel(els.limit, p.get("limit"));
    setSel(els.order, p.get("order"));
    els.custom.hidden = els.range.value !== "custom";
  }

  function pick(ev, keys) {
    for (const k of keys) {
      const v = ev[k];
      if (v !== undefined && v !== null && v !== "") return String(v);
    }
    return "";
  }

  function cell(tr, text, title) {
    const td = document.createElement("td");
    td.textContent = text || "–";
    if (title) td.title = title;
    tr.appendChild(td);
    return td;
  }

  function toggleDetail(tr, ev) {
    const next = tr.nextElementSibling;
    if (next && next.classList.contains("detail")) {
      next.remove();
      tr.classList.remove("open");
      return;
    }
    const d = document.createElement("tr");
    d.className = "detail";
    const td = document.createElement("td");
    td.colSpan = 4;
    td.textContent = JSON.stringify(ev, null, 2);
    d.appendChild(td);
    tr.after(d);
    tr.classList.add("open");
  }

  function render(answer, ms) {
    const events = Array.isArray(answer.events) ? answer.events : [];
    els.tbody.replaceChildren();
    if (events.length === 0) {
      const tr = document.createElement("tr");
      tr.className = "empty";
      const td = cell(tr, "no events match");
      td.colSpan = 4;
      els.tbody.appendChild(tr);
    }
    for (const ev of events) {
      const tr = document.createElement("tr");
      tr.className = "ev";
      tr.tabIndex = 0;
      const ts = pick(ev, ["@timestamp"]);
      const local = ts ? new Date(ts) : null;
      cell(tr, ts, local && !isNaN(local) ? local.toString() : "");
      const host = pick(ev, ["host.name", "host.hostname", "observer.hostname", "observer.name",
                             "log.syslog.hostname"]);
      cell(tr, host, host);
      const ds = pick(ev, ["event.dataset", "event.module"]);
      cell(tr, ds, ds);
      const msg = pick(ev, ["message", "event.original"]);
      cell(tr, msg, msg.length > 120 ? msg.slice(0, 2000) : "");
      tr.addEventListener("click", () => toggleDetail(tr, ev));
      tr.addEventListener("keydown", (e) => {
        if (e.key === "Enter" || e.key === " ") { e.preventDefault(); toggleDetail(tr, ev); }
      });
      els.tbody.appendChild(tr);
    }
    const total = Number(answer.total) || 0;
    const off = Number(answer.offset) || 0;
    els.summary.textContent = events.length
      ? `${off + 1}–${off + events.length} of ${total.toLocaleString()} events · ${ms} ms`
      : `0 of ${total.toLocaleString()} events · ${ms} ms`;
    els.prev.disabled = off === 0;
    els.next.disabled = off + events.length >= total;
  }

  async function run(search) {
    const token = getToken();
    if (!token) {
      showMessage("Paste the API token above first (mamori serve prints where it keeps it; " +
                  "by default ./var/api-token).");
      els.token.focus();
      return;
    }
    if (inflight) inflight.abort();
    inflight = new AbortController();
    const started = performance.now();
    els.summary.textContent = "searching…";
    try {
      const resp = await fetch("/api/v1/events?" + queryString(search), {
        headers: { "Authorization": "Bearer " + token, "Accept": "application/json" },
        signal: inflight.signal,
        cache: "no-store",
      });
      let body = null;
      try { body = await resp.json(); } catch (e) { body = null; }
      const ms = Math.round(performance.now() - started);
      if (resp.status === 401) {
        els.summary.textContent = "";
        showMessage("The API refused the token (401). Paste a valid one above.");
        els.token.focus();
        return;
      }
      if (!resp.ok || !body) {
        els.summary.textContent = "";
        const what = body && body.error ? body.error + (body.detail ? ": " + body.detail : "")
                                        : "HTTP " + resp.status;
        showMessage("The search failed — " + what);
        return;
      }
      showMessage("");
      current = search;
      render(body, ms);
    } catch (e) {
      if (e.name === "AbortError") return;
      els.summary.textContent = "";
      showMessage("Cannot reach the mamori API: " + e.message);
    } finally {
      inflight = null;
    }
  }

  async function checkHealth() {
    try {
      const resp = await fetch("/api/v1/health", { cache: "no-store" });
      const body = await resp.json();
      els.health.textContent = body.status === "ok" ? "mamori " + body.version : "unhealthy";
      els.health.className = "health " + (body.status === "ok" ? "ok" : "bad");
    } catch (e) {
      els.health.textContent = "unreachable";
      els.health.className = "health bad";
    }
  }

  els.tokenForm.addEventListener("submit", (e) => {
    e.preventDefault();
    setToken(els.token.value.trim());
    els.token.value = "";
    els.token.placeholder = getToken() ? "token saved in this browser" : "paste the bearer token";
    showMessage("");
    if (getToken()) els.form.requestSubmit();
  });
  els.forget.addEventListener("click", () => {
    setToken("");
    els.token.value = "";
    els.token.placeholder = "paste the bearer token";
  });
  els.range.addEventListener("change", () => { els.custom.hidden = els.range.value !== "custom"; });
  els.form.addEventListener("submit", (e) => {
    e.preventDefault();
    let s;
    try { s = buildSearch(); } catch (err) { showMessage(err.message); return; }
    saveHash();
    run(s);
  });
  els.prev.addEventListener("click", () => {
    if (!current) return;
    run(Object.assign({}, current, { offset: Math.max(0, current.offset - current.limit) }));
  });
  els.next.addEventListener("click", () => {
    if (!current) return;
    run(Object.assign({}, current, { offset: current.offset + current.limit }));
  });

  loadHash();
  if (getToken()) els.token.placeholder = "token saved in this browser";
  checkHealth();
  if (getToken()) els.form.requestSubmit(); else els.token.focus();
})();
