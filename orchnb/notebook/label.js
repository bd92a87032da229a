// orchnb label widget (anywidget ESM): one row at a time, labelled with keys or buttons.
// Every label is sent to Python as it is given ({type: "label", ...}); Python saves it.

function field(name, cls) {
  const box = document.createElement("div");
  box.className = "olb-field";
  const title = document.createElement("div");
  title.className = "olb-name";
  title.textContent = name;
  const body = document.createElement(cls === "olb-steps" ? "ol" : "div");
  body.className = cls || "olb-text";
  box.append(title, body);
  return [box, body];
}

function button(text, cls, onClick) {
  const b = document.createElement("button");
  b.className = "olb-btn " + (cls || "");
  b.textContent = text;
  b.addEventListener("click", (e) => { e.preventDefault(); onClick(); });
  return b;
}

function render({ model, el }) {
  const root = document.createElement("div");
  root.className = "orchnb-lb tex2jax_ignore mathjax_ignore";
  root.tabIndex = 0;
  // JupyterLab: keys typed here are the widget's, not the notebook's shortcuts.
  root.setAttribute("data-lm-suppress-shortcuts", "true");
  const head = document.createElement("div");
  head.className = "olb-head";
  const where = document.createElement("span");
  const bar = document.createElement("div");
  bar.className = "olb-bar";
  const fill = document.createElement("div");
  fill.className = "olb-fill";
  bar.append(fill);
  const count = document.createElement("span");
  count.className = "olb-count";
  head.append(where, bar, count);
  const [inBox, inText] = field("input");
  const [outBox, outText] = field("output");
  const [expBox, expText] = field("expected");
  const [judgeBox, judgeText] = field("judge");
  const [trajBox, trajList] = field("trajectory", "olb-steps");
  const [extraBox, extraText] = field("row");
  const actions = document.createElement("div");
  actions.className = "olb-actions";
  const note = document.createElement("textarea");
  note.className = "olb-note";
  note.placeholder = "note (n): what is wrong, in a few words";
  const tags = document.createElement("input");
  tags.className = "olb-tags";
  tags.placeholder = "tags (t), comma-separated";
  const help = document.createElement("div");
  help.className = "olb-help";
  root.append(head, inBox, outBox, expBox, judgeBox, trajBox, extraBox, actions, note, tags, help);
  el.append(root);

  const items = () => model.get("items") || [];
  const scale = () => model.get("scale") || [];
  const current = () => items()[model.get("index")];
  const go = (i) => {
    const n = items().length;
    model.set("index", Math.max(0, Math.min(n - 1, i)));
    model.save_changes();
  };
  // Python is the only writer of "given"; labels sent but not yet echoed show from here.
  const pending = {};
  const givenNow = () => ({ ...(model.get("given") || {}), ...pending });
  // What is typed in the note / tags boxes and not sent yet: a repaint (the kernel echoing an
  // earlier label) must not wipe it before the label key sends it.
  let shownKey = null;
  let dirty = false;
  note.addEventListener("input", () => { dirty = true; });
  tags.addEventListener("input", () => { dirty = true; });
  const send = (row, label) => {
    dirty = false;
    const tagList = tags.value.split(",").map((t) => t.trim()).filter((t) => t);
    pending[row.key] = { label, note: note.value, tags: tagList };
    model.send({ type: "label", key: row.key, label, note: note.value, tags: tagList });
  };
  const give = (label) => {
    const row = current();
    if (!row) return;
    send(row, label);
    go(model.get("index") + 1);
    paint();
  };
  const resend = () => {  // a note or tags edited after the label: save them too
    const row = current();
    const g = row && givenNow()[row.key];
    if (g) send(row, g.label);
  };
  const settle = () => {  // drop what Python has saved (it echoes the same label)
    const saved = model.get("given") || {};
    for (const [k, v] of Object.entries(pending)) {
      if (saved[k] && saved[k].label === v.label && saved[k].note === v.note) delete pending[k];
    }
    paint();
  };
  note.addEventListener("change", resend);
  tags.addEventListener("change", resend);

  function paint() {
    const all = items();
    const i = model.get("index");
    const row = all[i];
    const given = givenNow();
    const done = all.filter((r) => given[r.key]).length;
    where.innerHTML = "";
    const t = document.createElement("b");
    t.textContent = model.get("title");
    where.append(t, ` · row ${all.length ? i + 1 : 0} of ${all.length}`);
    fill.style.width = all.length ? `${(100 * done) / all.length}%` : "0";
    count.textContent = `${done} labelled`;
    count.dataset.done = String(done);
    if (!row) return;
    inText.textContent = row.input;
    outText.textContent = row.output;
    expBox.style.display = row.expected ? "" : "none";
    expText.textContent = row.expected;
    const hasJudge = row.score !== null && row.score !== undefined;
    judgeBox.style.display = hasJudge || row.reason ? "" : "none";
    judgeText.textContent = (hasJudge ? `score ${row.score}` : "") + (row.reason ? ` · ${row.reason}` : "");
    trajBox.style.display = row.trajectory.length ? "" : "none";
    trajList.textContent = "";
    for (const s of row.trajectory) {
      const li = document.createElement("li");
      li.textContent = s;
      trajList.append(li);
    }
    const extra = Object.entries(row.extra || {});
    extraBox.style.display = extra.length ? "" : "none";
    extraText.textContent = extra.map(([k, v]) => `${k}: ${v}`).join("\n");
    const g = given[row.key];
    actions.textContent = "";
    scale().forEach((s, k) => {
      const b = button(`${k + 1} ${s}`, g && g.label === s ? "olb-on" : "", () => give(s));
      b.dataset.value = s;
      actions.append(b);
    });
    actions.append(button("skip (s)", "", () => go(i + 1)), button("← back (k)", "", () => go(i - 1)),
                   button("next (j) →", "", () => go(i + 1)));
    const state = document.createElement("span");
    state.className = "olb-given";
    state.textContent = g ? `labelled: ${g.label}` : "not labelled";
    actions.append(state);
    if (row.key !== shownKey) dirty = false;  // a draft belongs to the row it was typed on
    shownKey = row.key;
    if (!dirty && document.activeElement !== note) note.value = g ? g.note || "" : "";
    if (!dirty && document.activeElement !== tags) tags.value = g ? (g.tags || []).join(", ") : "";
    help.textContent = `keys: ${scale().map((s, k) => `${k + 1} ${s}`).join(", ")} · j next · k back · s skip · n note · t tags · Esc leaves a text box`;
  }

  root.addEventListener("keydown", (e) => {
    const typing = e.target === note || e.target === tags;
    if (typing) {
      if (e.key === "Escape") { e.target.blur(); root.focus(); }
      e.stopPropagation();
      return;
    }
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    const k = e.key;
    const n = parseInt(k, 10);
    let handled = true;
    if (n >= 1 && n <= scale().length) give(scale()[n - 1]);
    else if (k === "j" || k === "ArrowRight" || k === "s") go(model.get("index") + 1);
    else if (k === "k" || k === "ArrowLeft") go(model.get("index") - 1);
    else if (k === "n") note.focus();
    else if (k === "t") tags.focus();
    else handled = false;
    if (handled) { e.preventDefault(); e.stopPropagation(); }
  });
  const events = ["change:items", "change:index", "change:scale"];
  for (const ev of events) model.on(ev, paint);
  model.on("change:given", settle);
  paint();
  return () => { for (const ev of events) model.off(ev, paint); model.off("change:given", settle); };
}

export default { render };
