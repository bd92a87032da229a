// orchnb Playground front end (anywidget ESM, plain JS, no build step).
// State comes only from the widget's traits; buttons send {action: ...} messages to Python.

const SVG = "http://www.w3.org/2000/svg";
const plural = (n, w) => `${n} ${w}${n === 1 ? "" : "s"}`;  // "1 call" / "3 calls"

function h(tag, attrs = {}, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") el.className = v;
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "text") el.textContent = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const kid of kids.flat()) {
    if (kid === null || kid === undefined || kid === false) continue;
    el.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
  }
  return el;
}

function s(tag, attrs = {}, ...kids) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null) continue;
    if (k === "text") el.textContent = v;
    else el.setAttribute(k, String(v));
  }
  for (const kid of kids) if (kid) el.append(kid);
  return el;
}

const short = (t, n) => (t && t.length > n ? t.slice(0, n - 1) + "…" : t || "");
// orchnb.trace.fmt_usd's rule, the package's one money format: two decimals from $1, three
// significant digits below; "unpriced" (never "$0") when nothing of it has a known price.
const usdText = (usd) => {
  if (usd === 0) return "$0";
  if (Math.abs(usd) >= 1) return `$${usd.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 })}`;
  const decimals = Math.max(2, 2 - Math.floor(Math.log10(Math.abs(usd))));
  let text = usd.toFixed(decimals).replace(/0+$/, "");
  if (text.split(".")[1].length < 2) text = usd.toFixed(2);
  return `$${text}`;
};
const money = (usd, unpriced) => {
  if (usd === null || usd === undefined) return unpriced ? "unpriced" : "–";
  if (usd === 0 && unpriced) return "unpriced";
  const txt = usdText(usd);
  return unpriced ? `${txt} (+${unpriced} unpriced)` : txt;
};
const ms = (v) => (v === null || v === undefined ? "–" : v >= 1000 ? `${(v / 1000).toFixed(2)} s` : `${v.toFixed(1)} ms`);
const pretty = (v) => {
  if (typeof v === "string") {
    try { return JSON.stringify(JSON.parse(v), null, 2); } catch (e) { return v; }
  }
  return JSON.stringify(v, null, 2);
};

function messagesView(messages) {
  return h("div", { class: "opg-messages" }, (messages || []).map((m) =>
    h("div", { class: `opg-msg-row opg-role-${m.role}` },
      h("span", { class: "opg-role", text: m.role + (m.name ? ` (${m.name})` : "") }),
      h("pre", { class: "opg-pre", text: m.content || "" }),
      m.tool_calls ? h("pre", { class: "opg-pre opg-toolcalls", text: "→ " + m.tool_calls.map((c) => `${c.name}(${JSON.stringify(c.arguments)})`).join("\n→ ") }) : null)));
}

function callCard(c) {
  const facts = [];
  if (c.kind === "model") {
    facts.push(c.model + (c.simulated ? " (simulated)" : ""));
    if (c.input_tokens !== null && c.input_tokens !== undefined) facts.push(`${c.input_tokens} → ${c.output_tokens} tokens`);
    facts.push(c.cached ? "cached" : money(c.cost_usd, c.unpriced ? 1 : 0));
  } else {
    facts.push(`tool ${c.tool}`);
  }
  facts.push(ms(c.latency_ms));
  if (c.retries) facts.push(`${c.retries} retr${c.retries === 1 ? "y" : "ies"}`);
  if (c.item !== null && c.item !== undefined) facts.push(`item ${c.item}`);
  if (c.iteration) facts.push(`iteration ${c.iteration}`);
  const body = [];
  if (c.kind === "model") {
    body.push(h("details", { class: "opg-prompt" }, h("summary", { text: `prompt (${plural((c.messages || []).length, "message")})` }), messagesView(c.messages)));
    if (c.tool_calls && c.tool_calls.length)
      body.push(h("div", { class: "opg-label", text: "tool calls" }), h("pre", { class: "opg-pre opg-toolcalls", text: c.tool_calls.map((t) => `${t.name}(${JSON.stringify(t.arguments)})`).join("\n") }));
  } else {
    body.push(h("div", { class: "opg-label", text: "arguments" }), h("pre", { class: "opg-pre", text: pretty(c.arguments) }));
  }
  if (c.output) body.push(h("div", { class: "opg-label", text: c.kind === "tool" ? "result" : "output" }), h("pre", { class: "opg-pre opg-output", text: c.output }));
  if (c.error) body.push(h("div", { class: "opg-error", text: c.error }));
  return h("div", { class: "opg-call", "data-kind": c.kind, "data-step": c.step, "data-status": c.status, "data-span": c.span_id },
    h("div", { class: "opg-call-head" }, h("span", { class: `opg-dot opg-s-${c.status}` }), h("b", { text: c.kind === "tool" ? c.tool : c.step }), h("span", { class: "opg-facts", text: facts.join(" · ") })),
    body);
}

function render({ model, el }) {
  // tex2jax_ignore / mathjax_ignore: never let a page's MathJax typeset "$0.01 … $0.02"
  const root = h("div", { class: "orchnb-pg tex2jax_ignore mathjax_ignore", "data-pipeline": model.get("name") });
  el.append(root);
  const send = (msg) => model.send(msg);

  // -- toolbar ------------------------------------------------------------------------------
  const input = h("textarea", { class: "opg-input", rows: 1, placeholder: "input for the pipeline…" });
  input.value = model.get("input_text");
  // Fit the text (up to ~4 lines). Also when the box's width changes (the toolbar reflows when a
  // run pauses, the notebook is resized) or it first becomes visible, not only on typing.
  const grow = () => {
    if (!input.isConnected || !input.offsetWidth) return;  // hidden: scrollHeight is 0
    input.style.height = "auto";
    input.style.height = `${Math.min(input.scrollHeight + 2, 96)}px`;
  };
  input.addEventListener("input", () => { grow(); model.set("input_text", input.value); model.save_changes(); });
  requestAnimationFrame(grow);
  let lastWidth = 0;
  const resized = new ResizeObserver(() => { if (input.offsetWidth !== lastWidth) { lastWidth = input.offsetWidth; grow(); } });
  resized.observe(input);
  input.addEventListener("keydown", (ev) => { if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) { ev.preventDefault(); send({ action: "run" }); } });
  const btn = (label, action, title) => h("button", { class: `opg-btn opg-${action}`, title, "data-action": action, onclick: () => send({ action }) }, label);
  const stepBtn = btn("Step", "step", "let the next model or tool call happen, then pause");
  const runBtn = btn("Run", "run", "run to the end (Ctrl+Enter)");
  const stopBtn = btn("Stop", "stop", "cancel the run (the partial trace is kept)");
  const resetBtn = btn("Reset", "reset", "clear the current run");
  const approve = h("input", { type: "checkbox", class: "opg-approve-tools" });
  approve.addEventListener("change", () => { model.set("approve_tools", approve.checked); model.save_changes(); });
  const statusPill = h("span", { class: "opg-status" });
  const title = h("span", { class: "opg-title" }, h("b", { text: model.get("name") }), h("span", { class: "opg-pattern", text: model.get("pattern") }));
  const simBadge = h("span", { class: "opg-sim", text: "simulated", title: "sim: models: offline, deterministic stand-ins" });
  root.append(h("div", { class: "opg-bar" }, title, simBadge, input, stepBtn, runBtn, stopBtn, resetBtn,
    h("label", { class: "opg-check", title: "pause before every tool call for approve / edit / reject" }, approve, " approve tools"), statusPill));
  const msgBox = h("div", { class: "opg-message" });
  const approvalBox = h("div", { class: "opg-approval" });
  root.append(msgBox, approvalBox);

  // -- graph + detail ---------------------------------------------------------------------------
  const graphBox = h("div", { class: "opg-graph" });
  const detailBox = h("div", { class: "opg-detail" });
  const detailHead = h("div", { class: "opg-detail-head" });
  const editBox = h("div", { class: "opg-edit" });
  const detailBody = h("div", { class: "opg-detail-body" });
  detailBox.append(detailHead, editBox, detailBody);
  root.append(h("div", { class: "opg-main" }, graphBox, detailBox));
  const resultBox = h("div", { class: "opg-result" });
  root.append(resultBox);

  // -- history + yaml ---------------------------------------------------------------------------
  const histTable = h("table", { class: "opg-history" });
  const compareBtn = h("button", { class: "opg-btn opg-compare-btn", disabled: true, onclick: () => send({ action: "compare", ids: [...picked] }) }, "Compare 2 runs");
  const compareBox = h("div", { class: "opg-compare" });
  const histWrap = h("details", { class: "opg-section opg-history-wrap", open: true }, h("summary", { text: "Run history" }), histTable, compareBtn, compareBox);
  const yamlPre = h("pre", { class: "opg-yaml" });
  const editsInfo = h("div", { class: "opg-edits-info" });
  const forkInfo = h("div", { class: "opg-fork-info" });
  const forkPre = h("pre", { class: "opg-fork-yaml", hidden: true });
  const yamlWrap = h("details", { class: "opg-section opg-yaml-wrap" }, h("summary", { text: "Edits and YAML" }), editsInfo, yamlPre, forkInfo, forkPre,
    h("div", {}, h("button", { class: "opg-btn opg-writeback", onclick: () => send({ action: "write_back" }) }, "Write back to pipeline"),
      h("button", { class: "opg-btn opg-discard", onclick: () => send({ action: "discard_edits" }) }, "Discard edits"),
      h("button", { class: "opg-btn opg-copy", onclick: () => navigator.clipboard && navigator.clipboard.writeText(model.get("yaml")) }, "Copy YAML")));
  root.append(histWrap, yamlWrap);
  const picked = new Set();

  // -- drawing the graph ------------------------------------------------------------------------
  let nodeEls = {};
  let edgeEls = [];
  function drawGraph() {
    const g = model.get("graph");
    graphBox.textContent = "";
    nodeEls = {};
    edgeEls = [];
    if (!g || !g.nodes) return;
    const svg = s("svg", { class: "opg-svg", width: g.width, height: g.height, viewBox: `0 0 ${g.width} ${g.height}` });
    graphBox.style.flexBasis = `${Math.ceil(g.width) + 2}px`;  // the detail pane wraps below if both do not fit
    svg.append(s("defs", {}, s("marker", { id: "opg-arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 8, markerHeight: 8, markerUnits: "userSpaceOnUse", orient: "auto-start-reverse" }, s("path", { d: "M0,0 L10,5 L0,10 z", class: "opg-arrowhead" })),
      s("marker", { id: "opg-arrow-on", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 9, markerHeight: 9, markerUnits: "userSpaceOnUse", orient: "auto-start-reverse" }, s("path", { d: "M0,0 L10,5 L0,10 z", class: "opg-arrowhead-on" }))));
    for (const n of g.nodes.filter((n) => n.box)) {
      const grp = s("g", { class: `opg-box opg-depth-${n.depth % 2}`, "data-key": n.key, "data-kind": "pattern" },
        s("rect", { x: n.x, y: n.y, width: n.w, height: n.h, rx: 10 }),
        s("text", { x: n.x + 10, y: n.y + 17, class: "opg-box-title" }, s("tspan", { text: n.label, "font-weight": "600" }), s("tspan", { dx: 6, class: "opg-box-pattern", text: n.pattern + (n.max_iterations ? ` · ≤ ${n.max_iterations} iterations` : "") })),
        s("text", { x: n.x + n.w - 10, y: n.y + 17, class: "opg-badge", "text-anchor": "end" }));
      grp.addEventListener("click", (ev) => { ev.stopPropagation(); select(n.key); });
      svg.append(grp);
      nodeEls[n.key] = grp;
    }
    for (const e of g.edges) {
      const p = s("path", { d: e.path, class: `opg-edge opg-edge-${e.kind}`, "data-from": e.from, "data-to": e.to, "marker-end": "url(#opg-arrow)" });
      svg.append(p);
      let label = null;
      if (e.label) {
        label = s("text", { x: e.lx, y: e.ly, class: "opg-edge-label", "text-anchor": e.anchor || "start", text: e.label });
        svg.append(label);
      }
      edgeEls.push({ e, p, label });
    }
    for (const n of g.nodes.filter((n) => !n.box)) {
      if (n.kind === "terminal") {
        const c = s("circle", { cx: n.x + n.w / 2, cy: n.y + n.h / 2, r: n.w / 2, class: "opg-terminal", "data-key": n.key });
        svg.append(c);
        nodeEls[n.key] = c;
        continue;
      }
      const grp = s("g", { class: `opg-node opg-kind-${n.kind}`, "data-key": n.key, "data-kind": n.kind, "data-label": n.label },
        s("rect", { x: n.x + 4, y: n.y + 4, width: n.w, height: n.h, rx: 7, class: "opg-stack" }),
        s("rect", { x: n.x, y: n.y, width: n.w, height: n.h, rx: 7, class: "opg-node-rect" }),
        s("text", { x: n.x + 10, y: n.y + 19, class: "opg-node-label", text: short(n.label, 20) }),
        s("text", { x: n.x + 10, y: n.y + 36, class: "opg-node-sub", text: short((n.role ? n.role + " · " : "") + n.sub, 25) }),
        s("text", { x: n.x + n.w - 6, y: n.y - 4, class: "opg-badge opg-node-badge", "text-anchor": "end" }));
      grp.append(s("title", { text: `${n.label}\n${n.sub}` }));
      grp.addEventListener("click", (ev) => { ev.stopPropagation(); select(n.key); });
      svg.append(grp);
      nodeEls[n.key] = grp;
    }
    graphBox.append(svg);
    paint();
  }

  function select(key) {
    model.set("selected", key);
    model.save_changes();
  }

  // -- live state: colours, highlight, badges -------------------------------------------------
  function paint() {
    const live = model.get("live") || {};
    const nodes = live.nodes || {};
    const current = live.current || [];
    const selected = model.get("selected");
    const visited = (key) => {
      if (nodes[key] && nodes[key].s) return true;
      if (current.includes(key)) return true;
      const m = key.match(/^(.*)\/__(in|out)__$/);
      if (m) { const parent = nodes[m[1]]; return !!parent && (m[2] === "in" ? !!parent.s : parent.s === "ok"); }
      return false;
    };
    for (const [key, el] of Object.entries(nodeEls)) {
      const st = nodes[key];
      const status = st ? st.s : "";
      el.setAttribute("data-status", status || "");
      el.classList.toggle("opg-current", current.includes(key));
      el.classList.toggle("opg-next", current[0] === key);
      el.classList.toggle("opg-selected", selected === key);
      el.classList.toggle("opg-visited", visited(key));
      const badge = el.querySelector && el.querySelector(":scope > .opg-badge");
      if (badge) {
        const bits = [];
        if (st && st.n > 1) bits.push(`×${st.n}`);
        else if (st && st.i > 1) bits.push(`iteration ${st.i}`);
        else if (st && st.c > 1 && !el.classList.contains("opg-box")) bits.push(`${st.c} calls`);
        if (st && st.e) bits.push(`${st.e} failed`);
        badge.textContent = bits.join(" ");
      }
      el.classList.toggle("opg-fanout", !!(st && st.n > 1));
    }
    for (const { e, p, label } of edgeEls) {
      // taken: the source has run (a call merely waiting there does not count) and the target
      // was reached; a self-loop once its node has iterated
      const ran = (key) => !!(nodes[key] && nodes[key].s) || (/\/__in__$/.test(key) && visited(key));
      const taken = e.from === e.to ? !!(nodes[e.from] && nodes[e.from].i > 1) : ran(e.from) && visited(e.to);
      p.classList.toggle("opg-taken", !!taken);
      p.setAttribute("marker-end", taken ? "url(#opg-arrow-on)" : "url(#opg-arrow)");
      if (label) {
        label.classList.toggle("opg-taken", !!taken);
        const n = nodes[e.to] && nodes[e.to].n;  // a map's fan-out: the live item count
        if (/^(\d+ )?items$/.test(e.label)) label.textContent = n ? plural(n, "item") : e.label;
      }
    }
    const status = live.status || "idle";
    root.setAttribute("data-status", status);
    root.setAttribute("data-current", current[0] || "");
    root.setAttribute("data-run", live.run_id || "");
    statusPill.textContent = status + (live.pending_count > 1 ? ` · ${live.pending_count} waiting` : "");
    statusPill.className = `opg-status opg-s-${status}`;
    simBadge.style.display = live.simulated || (model.get("graph").nodes || []).some((n) => n.sim) ? "" : "none";
    // result line
    resultBox.textContent = "";
    if (live.run_id) {
      resultBox.append(...[
        h("span", { class: "opg-result-facts", text: [plural(live.calls, "call"), plural(live.tokens, "token"), money(live.cost_usd, live.unpriced), ms(live.latency_ms), live.route ? `route: ${live.route}` : null].filter(Boolean).join(" · ") }),
        live.output !== null && live.output !== undefined ? h("pre", { class: "opg-pre opg-final", "data-output": "1", text: live.output }) : null,
        live.error ? h("div", { class: "opg-error", text: live.error }) : null].filter(Boolean));
    }
    paintApproval(live);
  }

  // -- tool approval ------------------------------------------------------------------------
  let approvalSig = "";
  function paintApproval(live) {
    const p = (live.pending || [])[0];
    const busy = model.get("busy");
    const show = p && p.kind === "tool" && !busy && !live.done;
    const sig = show ? JSON.stringify([live.run_id, p]) : "";
    root.setAttribute("data-approval", show ? "1" : "");
    if (sig === approvalSig) return;
    approvalSig = sig;
    approvalBox.textContent = "";
    if (!show) return;
    const args = h("textarea", { class: "opg-args", rows: 4 });
    args.value = JSON.stringify(p.arguments, null, 2);
    const reason = h("input", { class: "opg-reason", placeholder: "reason (shown to the agent)" });
    const ok = h("button", { class: "opg-btn opg-approve", onclick: () => {
      let parsed = null;
      try { parsed = JSON.parse(args.value); } catch (e) { msgBox.textContent = `arguments are not valid JSON: ${e.message}`; msgBox.className = "opg-message opg-error"; return; }
      const same = JSON.stringify(parsed) === JSON.stringify(p.arguments);
      send({ action: "approve", arguments: same ? null : parsed });
    } }, "Approve");
    const no = h("button", { class: "opg-btn opg-reject", onclick: () => send({ action: "reject", reason: reason.value }) }, "Reject");
    approvalBox.append(h("div", { class: "opg-approval-card", "data-tool": p.name },
      h("div", {}, h("b", { text: "Tool call waiting for approval: " }), h("code", { text: p.name }), ` (step ${p.step}${p.iteration ? `, iteration ${p.iteration}` : ""})`),
      h("div", { class: "opg-label", text: "arguments (edit before approving)" }), args,
      h("div", { class: "opg-approval-actions" }, ok, no, reason)));
  }

  // -- detail pane ------------------------------------------------------------------------------
  function statusOf(key, status) {
    const live = model.get("live") || {};
    return (live.current || []).includes(key) && !live.done ? "waiting" : status;
  }

  function paintDetail() {
    const d = model.get("detail") || {};
    const key = model.get("selected");
    const g = model.get("graph") || {};
    const node = (g.nodes || []).find((n) => n.key === key);
    detailBox.setAttribute("data-key", key || "");
    detailHead.textContent = "";
    detailBody.textContent = "";
    if (!key || !node) {
      detailHead.append(h("div", { class: "opg-hint", text: "Click a step in the graph to see its prompt, output, tokens, cost and latency, and to edit it. Step runs one model or tool call at a time." }));
      return;
    }
    if (d.key !== key) {
      // A click selects at once; the kernel's detail of that step arrives a moment later: until
      // then, show the step's name, never the previous step's calls under it.
      detailHead.append(h("div", { class: "opg-detail-title" }, h("b", { text: node.label })));
      detailBody.append(h("div", { class: "opg-hint", text: "loading…" }));
      updateFork();
      return;
    }
    detailHead.append(h("div", { class: "opg-detail-title" }, h("b", { text: node.label }), h("span", { class: "opg-facts", text: ` ${node.box ? node.pattern : node.sub}` }),
      statusOf(key, d.status) ? h("span", { class: `opg-status opg-s-${statusOf(key, d.status)}`, text: statusOf(key, d.status) }) : null));
    for (const w of d.waiting || []) {
      detailBody.append(h("div", { class: "opg-waiting", "data-kind": w.kind, "data-step": w.step },
        h("div", { class: "opg-label", text: `next: ${w.kind === "model" ? "model call to " + w.name : "tool call " + w.name} (waiting)` }),
        w.kind === "model" ? messagesView(w.messages) : h("pre", { class: "opg-pre", text: pretty(w.arguments) }),
        w.tools && w.tools.length ? h("div", { class: "opg-facts", text: "tools offered: " + w.tools.join(", ") }) : null));
    }
    if (d.route) detailBody.append(h("div", { class: "opg-facts", text: `route: ${d.route}` }));
    const calls = d.calls || [];
    if (d.total_calls > calls.length) detailBody.append(h("div", { class: "opg-facts", text: `showing the last ${calls.length} of ${plural(d.total_calls, "call")}` }));
    for (const c of calls) detailBody.append(callCard(c));
    if (node.box && d.output !== null && d.output !== undefined) detailBody.append(h("div", { class: "opg-label", text: "output" }), h("pre", { class: "opg-pre opg-output", text: d.output }));
    if (!calls.length && !(d.waiting || []).length && !node.box) detailBody.append(h("div", { class: "opg-hint", text: "no calls yet in this run" }));
    updateFork();
  }

  // -- edit form (rebuilt only when the selection or its fields change) ----------------------
  let editSig = "";
  const editOpen = {};
  function paintEdit() {
    const key = model.get("selected");
    const fields = (model.get("params") || {})[key] || [];
    const sig = JSON.stringify([key, fields]);
    if (sig === editSig) return;
    editSig = sig;
    editBox.textContent = "";
    if (!key) return;
    const forkBtn = (collect) => h("button", { class: "opg-btn opg-fork", "data-key": key, title: "re-run from this step with the edits above (for the fork only): the calls before it are replayed from this run at no cost; then parent and fork are compared",
      onclick: () => send({ action: "fork", key, fields: collect() }) }, "Fork here");
    if (!fields.length) { editBox.append(h("div", { class: "opg-fork-row" }, forkBtn(() => ({})))); updateFork(); return; }
    const inputs = {};
    const rows = fields.map((f) => {
      let inp;
      if (f.type === "text") { inp = h("textarea", { class: "opg-field", rows: f.name === "prompt" ? 4 : 2, "data-field": f.name }); inp.value = f.value || ""; }
      else { inp = h("input", { class: "opg-field", "data-field": f.name, type: "text" }); inp.value = f.value === null || f.value === undefined ? "" : String(f.value); }
      inputs[f.name] = { inp, f };
      return h("label", { class: "opg-field-row" }, h("span", { text: f.name }), inp);
    });
    const collect = () => {
      const changed = {};
      for (const [name, { inp, f }] of Object.entries(inputs)) {
        const old = f.value === null || f.value === undefined ? "" : String(f.value);
        if (inp.value !== old) changed[name] = inp.value;
      }
      return changed;
    };
    const apply = h("button", { class: "opg-btn opg-apply", onclick: () => {
      const changed = collect();
      if (Object.keys(changed).length) send({ action: "edit", key, fields: changed });
    } }, "Apply edit");
    const wrap = h("details", { class: "opg-edit-wrap", open: editOpen[key] }, h("summary", { text: "Edit prompt, model and parameters" }), rows,
      h("div", { class: "opg-fork-row" }, apply, forkBtn(collect)));
    wrap.addEventListener("toggle", () => { editOpen[key] = wrap.open; });
    editBox.append(wrap);
    updateFork();
  }

  // "Fork here" needs a run that paused or finished with calls at the selected step.
  function updateFork() {
    const b = editBox.querySelector(".opg-fork");
    if (!b) return;
    const d = model.get("detail") || {};
    const live = model.get("live") || {};
    const ready = !!live.run_id && !model.get("busy") && (d.calls || []).length > 0 && d.key === model.get("selected");
    b.disabled = !ready;
  }

  // -- history ----------------------------------------------------------------------------------
  function paintHistory() {
    const rows = model.get("history") || [];
    histTable.textContent = "";
    for (const id of [...picked]) if (!rows.some((r) => r.run_id === id)) picked.delete(id);
    histTable.append(h("thead", {}, h("tr", {}, ["", "#", "status", "route", "cost", "latency", "calls", "input", "output"].map((c) => h("th", { text: c })))));
    const body = h("tbody");
    for (const r of [...rows].reverse()) {
      const box = h("input", { type: "checkbox", class: "opg-pick", "data-run": r.run_id });
      box.checked = picked.has(r.run_id);
      box.addEventListener("change", () => {
        if (box.checked) { picked.add(r.run_id); if (picked.size > 2) picked.delete([...picked][0]); }
        else picked.delete(r.run_id);
        paintHistory();
      });
      body.append(h("tr", { "data-run": r.run_id, "data-status": r.status },
        h("td", {}, box), h("td", { text: `${r.n}${r.edits ? "*" : ""}${r.forked_from ? " fork" : ""}`, title: [r.edits ? `${plural(r.edits, "edit")} applied` : "", r.forked_from ? `fork of run ${r.forked_from}` : ""].filter(Boolean).join("; ") }),
        h("td", {}, h("span", { class: `opg-status opg-s-${r.status}`, text: r.status })),
        h("td", { text: r.route || "" }), h("td", { text: money(r.cost_usd, r.unpriced) }), h("td", { text: ms(r.latency_ms) }),
        h("td", { text: r.calls }), h("td", { class: "opg-cell", text: short(r.input, 60) }), h("td", { class: "opg-cell", text: short(r.output, 120) })));
    }
    histTable.append(body);
    compareBtn.disabled = picked.size !== 2;
    histWrap.style.display = rows.length ? "" : "none";
  }

  function paintComparison() {
    const c = model.get("comparison") || {};
    compareBox.textContent = "";
    if (!c.rows) return;
    if (!picked.has(c.a) || !picked.has(c.b)) { picked.clear(); picked.add(c.a); picked.add(c.b); paintHistory(); }
    const cols = ["output", "route", "cost_usd", "latency_ms", "status"];
    const fmt = (f, v) => (v === null || v === undefined ? "" : f === "cost_usd" ? money(v, 0) : f === "latency_ms" ? ms(v) : short(String(v), 80));
    const head = h("tr", {}, h("th", { text: "step" }), cols.flatMap((f) => [h("th", { text: `${f} A` }), h("th", { text: `${f} B` })]));
    const body = c.rows.map((r) => h("tr", { class: r.diverges ? "opg-diverges" : "" }, h("td", { text: r.step }),
      cols.flatMap((f) => [h("td", { text: fmt(f, r[`${f}:${c.a}`]) }), h("td", { text: fmt(f, r[`${f}:${c.b}`]) })])));
    compareBox.append(h("div", { class: "opg-facts", text: c.first_divergence ? `first divergence: ${c.first_divergence} (${c.reason})` : "the two runs agree" }),
      h("table", { class: "opg-compare-table" }, h("thead", {}, head), h("tbody", {}, body)));
  }

  function paintYaml() {
    const edits = model.get("edits") || {};
    const n = Object.values(edits).reduce((a, f) => a + Object.keys(f).length, 0);
    editsInfo.textContent = n ? `${plural(n, "edit")} in the playground's copy of the pipeline — Write back to apply them to the pipeline itself; paste the YAML into the %%orch cell to keep them.` : "No edits. The YAML the pipeline was built from (if any):";
    yamlPre.textContent = model.get("yaml") || "(built in Python: no YAML)";
    const fork = model.get("fork_edits") || {};
    forkInfo.textContent = fork.at ? `The fork of run ${fork.run_id} at ${fork.at} edited ${fork.fields.join(", ")} (for the fork only); the YAML with that edit, to keep it:` : "";
    forkPre.textContent = fork.yaml || "";
    forkPre.hidden = !fork.at;
    yamlWrap.classList.toggle("opg-has-edits", n > 0 || !!fork.at);
    if (n > 0 || fork.at) yamlWrap.open = true;
  }

  function paintMessage() {
    const m = model.get("message") || {};
    msgBox.textContent = m.text || "";
    msgBox.className = `opg-message ${m.level === "error" ? "opg-error" : m.text ? "opg-info" : ""}`;
  }

  function paintControls() {
    const busy = model.get("busy");
    const live = model.get("live") || {};
    const going = live.run_id && !live.done;
    root.setAttribute("data-busy", busy ? "true" : "false");
    runBtn.disabled = busy;
    stepBtn.textContent = busy ? "Pause" : "Step";
    stopBtn.disabled = !going;
    updateFork();
    approve.checked = model.get("approve_tools");
    if (document.activeElement !== input && input.value !== model.get("input_text")) { input.value = model.get("input_text"); grow(); }
  }

  const handlers = {
    "change:graph": () => { drawGraph(); paintEdit(); paintDetail(); },
    "change:live": () => { paint(); paintControls(); },
    "change:busy": () => { paintControls(); paint(); },
    "change:selected": () => { paint(); paintDetail(); paintEdit(); },
    "change:detail": paintDetail,
    "change:params": paintEdit,
    "change:history": paintHistory,
    "change:comparison": paintComparison,
    "change:yaml": paintYaml,
    "change:edits": paintYaml,
    "change:fork_edits": paintYaml,
    "change:message": paintMessage,
    "change:approve_tools": paintControls,
    "change:input_text": paintControls,
  };
  for (const [ev, fn] of Object.entries(handlers)) model.on(ev, fn);
  drawGraph(); paintDetail(); paintEdit(); paintHistory(); paintComparison(); paintYaml(); paintMessage(); paintControls();
  return () => { resized.disconnect(); for (const [ev, fn] of Object.entries(handlers)) model.off(ev, fn); };
}

export default { render };
