// orchnb TraceView front end (anywidget ESM): a table of spans, newest at the bottom.

const COLS = [
  ["step", "step"], ["kind", "kind"], ["what", "model / tool"], ["status", "status"],
  ["tokens", "tokens"], ["cost_usd", "cost"], ["latency_ms", "ms"], ["output", "output"],
];

function cell(row, key) {
  const v = row[key];
  // Formatted in Python by orchnb.trace.fmt_usd, the one money formatter ("unpriced", never $0).
  if (key === "cost_usd") return row.cost ?? "";
  if (v === null || v === undefined) return "";
  if (key === "latency_ms") return v.toFixed(1);
  if (key === "what" && row.simulated) return `${v} (sim)`;
  if (key === "step" && row.item !== null && row.item !== undefined) return `${v} [${row.item}]`;
  if (key === "step" && row.iteration) return `${v} #${row.iteration}`;
  const text = String(v);
  return text.length > 140 ? text.slice(0, 139) + "…" : text;
}

function render({ model, el }) {
  const root = document.createElement("div");
  root.className = "orchnb-tv tex2jax_ignore mathjax_ignore";  // no MathJax over "$0.01 … $0.02"
  const head = document.createElement("div");
  head.className = "otv-head";
  const scroller = document.createElement("div");
  scroller.className = "otv-scroll";
  const table = document.createElement("table");
  const thead = document.createElement("thead");
  const tr = document.createElement("tr");
  for (const [, label] of COLS) {
    const th = document.createElement("th");
    th.textContent = label;
    tr.append(th);
  }
  thead.append(tr);
  const tbody = document.createElement("tbody");
  table.append(thead, tbody);
  scroller.append(table);
  root.append(head, scroller);
  el.append(root);

  function paint() {
    const rows = model.get("rows") || [];
    const total = model.get("total");
    const run = model.get("run_id");
    head.textContent = `${run ? "run " + run : "all runs"} · ${total} span${total === 1 ? "" : "s"}` + (total > rows.length ? ` (last ${rows.length} shown)` : "");
    const atBottom = scroller.scrollTop + scroller.clientHeight >= scroller.scrollHeight - 4;
    tbody.textContent = "";
    for (const r of rows) {
      const row = document.createElement("tr");
      row.dataset.status = r.status;
      row.dataset.kind = r.kind;
      row.dataset.span = r.span_id;
      for (const [key] of COLS) {
        const td = document.createElement("td");
        td.textContent = cell(r, key);
        if (key === "output" && r.error) td.title = r.error;
        td.className = `otv-${key}`;
        row.append(td);
      }
      tbody.append(row);
    }
    if (atBottom) scroller.scrollTop = scroller.scrollHeight;
  }
  model.on("change:rows", paint);
  model.on("change:total", paint);
  paint();
  return () => { model.off("change:rows", paint); model.off("change:total", paint); };
}

export default { render };
