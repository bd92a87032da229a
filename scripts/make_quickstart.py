"""Writes notebooks/quickstart.ipynb (kept as a script so the notebook stays reviewable)."""
import nbformat as nbf

nb = nbf.v4.new_notebook()
md = nbf.v4.new_markdown_cell
code = nbf.v4.new_code_cell


def parameters(source: str) -> nbf.NotebookNode:
    """A code cell tagged ``parameters``: papermill's ``-p name value`` replaces its values."""
    return nbf.v4.new_code_cell(source, metadata={"tags": ["parameters"]})


cells = [
md("""# orchnb quickstart

Define a pipeline in a `%%orch` cell, run it whole or one model call at a time, and look at its
trace as a DataFrame. This notebook runs **offline**: with no `OPENAI_API_KEY` / `ANTHROPIC_API_KEY`
set it uses `sim:` models — simulated, deterministic stand-ins that are labelled *simulated*
everywhere they show up (traces, reprs, charts). Set a key and change the model strings to run the
same cells against a real provider."""),
code("""%load_ext orchnb
import os, tempfile
import orchnb

# A fresh home for traces and the response cache, so this notebook shows the same calls, costs and
# budget stop on every run (without this line they are kept in .orchnb/ next to the notebook).
os.environ["ORCHNB_HOME"] = tempfile.mkdtemp(prefix="orchnb-quickstart-")

HAVE_KEYS = bool(os.environ.get("OPENAI_API_KEY") and os.environ.get("ANTHROPIC_API_KEY"))
print("Using real providers" if HAVE_KEYS else
      "No API keys set: using simulated sim: models (offline and deterministic; costs "
      "shown are what the real models named in priced_as would charge)")"""),
md("""## Simulated models
A `sim:` model answers by rules, a script or a Python function. Here a "summarizer" keeps the first
sentence, and a "classifier" answers by keywords. `priced_as` reports what the call *would* cost on
a real model, so cost charts mean something offline (still labelled simulated)."""),
code("""def first_sentence(request):
    text = request.messages[-1].content.split(":", 1)[-1].strip()
    return text.split(". ")[0].rstrip(".") + "."

orchnb.sim_model("summarizer", fn=first_sentence, latency=(0.05, 0.15),
                 priced_as="openai:gpt-4o-mini")
orchnb.sim_model("classifier", rules={"invoice|amount due|payment": "invoice",
                                      "agreement|party|parties|term": "contract"},
                 default="report", latency=(0.02, 0.08), priced_as="anthropic:claude-haiku-4-5")
print("registered sim:summarizer and sim:classifier")"""),
md("## A two-step chain in YAML"),
code("""%%orch brief
pattern: chain
steps:
  - name: summarize
    model: sim:summarizer          # openai:gpt-4o-mini with a key
    prompt: "Summarize in one sentence: {{ input }}"
  - name: classify
    model: sim:classifier          # anthropic:claude-haiku-4-5 with a key
    system: "Is the document an invoice, a contract or a report? Answer with one word."
    prompt: "{{ steps.summarize }}"
"""),
md("""The document to run on is a notebook parameter (the cell is tagged `parameters`), so
papermill can swap it: `papermill quickstart.ipynb out.ipynb -p doc "Invoice 7: amount due $90."`"""),
parameters("""doc = ("This agreement is made between the parties named below. The term is twelve months. "
       "Either party may end it with thirty days notice.")"""),
code("""run = brief(doc)
run"""),
md("Every run's trace is a pandas DataFrame: one row per span (run → step → model call)."),
code("""run.trace.df[["step", "kind", "status", "model", "simulated", "latency_ms",
              "input_tokens", "output_tokens", "cost_usd"]]"""),
md("""## One step at a time
`start` returns a run paused before its first model call; each `step()` lets exactly one call
happen. This works from a plain synchronous cell, inside Jupyter's running event loop."""),
code("""run = brief.start("Invoice 1043: amount due $1,200 by March 3. Payment by bank transfer.")
print(run.status, "-> next call:", run.pending[0].step, run.pending[0].name)
print(run.pending[0].request.messages[0].content)"""),
code("""run.step()
print(run.status, "| calls so far:", run.calls, "| next:", run.pending[0].step)"""),
code("""run.step()
print(run.status, "| output:", run.output)"""),
md("The magics do the same: `%orch run`, `%orch step`, `%orch traces`."),
code("""%orch run brief "Quarterly report on sales in the northern region. Revenue grew 4%." """),
code("""%orch step brief "Payment reminder: the amount due is overdue." """),
code("""%orch step brief"""),
code("""%orch step brief"""),
md("""## Budgets and caching
A budget caps calls, tokens or dollars; exceeding it stops the run with a clear error and a complete
trace. Identical calls are answered from the response cache (marked `cached`, with what it saved)."""),
code("""try:
    brief(doc + " Extra clause.", budget=orchnb.Budget(max_calls=1))
except orchnb.BudgetExceeded as e:
    print("stopped:", e)
    print(e.run.trace.df[["step", "kind", "status"]])"""),
code("""again = brief(doc)   # same input as the first run: answered from the cache
again.trace.df.query("kind == 'model'")[["step", "cached", "cost_usd", "saved_usd"]]"""),
md("## Charts"),
code("""run.trace.plot.timeline()"""),
md("""## Traces persist
Spans are written to SQLite under `ORCHNB_HOME` as they finish (here the fresh folder set in the
first cell; by default `.orchnb/` in the working directory). A fresh Python process — as after a
kernel restart — reads every earlier run back:"""),
code("""import subprocess, sys
print(subprocess.run([sys.executable, "-c",
    "import orchnb; df = orchnb.traces(pipeline='brief'); "
    "print(df.run_id.nunique(), 'runs,', len(df), 'spans of brief read back from', "
    "orchnb.trace.home())"], capture_output=True, text=True).stdout)"""),
code("""orchnb.traces().groupby(["pipeline", "kind"]).size()"""),
]
nb["cells"] = cells
for i, cell in enumerate(nb.cells):  # stable ids: regenerating an unchanged notebook changes nothing
    cell["id"] = f"quickstart-{i:02d}"
nb["metadata"]["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
nbf.write(nb, "notebooks/quickstart.ipynb")
