"""Writes notebooks/charts.ipynb (kept as a script so the notebook stays reviewable)."""
import nbformat as nbf

md, code = nbf.v4.new_markdown_cell, nbf.v4.new_code_cell
cells = [
md("""# Trace analytics: every chart on real runs

All runs here are real orchnb runs: `sim:` models (offline, simulated, labelled as such) and the
**real `openai` and `anthropic` SDKs** talking to orchnb's loopback server
(`orchnb.testing.FakeProvider`, which speaks both wire formats), so tokens and prices are the
providers' own. Every chart is a Plotly figure you can restyle.

The export cells at the end use two optional extras: Parquet needs `pyarrow`
(`pip install 'orchnb[fast]'`) and OpenTelemetry needs `opentelemetry-sdk`
(`pip install 'orchnb[otel]'`). Without them those cells say so and skip; everything else runs on
the base install."""),
code("""%load_ext orchnb
import os, tempfile
import orchnb, pandas as pd
from orchnb.testing import FakeProvider, FakeReply

# A fresh home for traces and the response cache, so the charts show the same runs and costs every
# time (without this line runs add up in .orchnb/ next to the notebook, across runs).
os.environ["ORCHNB_HOME"] = tempfile.mkdtemp(prefix="orchnb-charts-")

fake = FakeProvider(latency=(0.02, 0.12), seed=1).start()   # loopback: no network, no keys
os.environ.update(fake.env())
print("OpenAI/Anthropic SDKs point at", fake.openai_base_url, "(loopback fake server)")"""),
md("## Runs to chart: a chain over both SDKs, a router, a map-reduce and an agent (sim)"),
code("""brief = orchnb.Chain("brief", [
    orchnb.Step("summarize", "openai:gpt-4o-mini", "Summarize in one sentence: {{ input }}"),
    orchnb.Step("classify", "anthropic:claude-haiku-4-5",
                "Invoice, contract or report? {{ steps.summarize }}"),
], cache=False)
docs = ["Invoice 7: amount due $300.", "This agreement binds both parties.",
        "Quarterly sales report.", "Payment overdue notice.", "Lease contract, 12 months.",
        "Annual report on safety.", "Invoice 8: due on receipt.", "Service agreement renewal."]
for d in docs:
    fake.script([FakeReply(text=f"Summary: {d}", input_tokens=60 + len(d), output_tokens=12,
                           cached_tokens=32),
                 FakeReply(text="contract" if "agree" in d or "contract" in d else "invoice")])
    run = brief(d)
run"""),
code("""orchnb.sim_model("triage", rules={"refund|charge|invoice": "billing",
                                  "crash|error|login": "technical"}, default="not sure",
                 latency=(0.01, 0.05), priced_as="openai:gpt-4o-mini")
orchnb.sim_model("writer", fn=lambda r: "Reply: " + r.messages[-1].content[:40],
                 latency=(0.05, 0.2), priced_as="openai:gpt-4o")
router = orchnb.Router("support", classifier="sim:triage", routes={
    "billing": orchnb.Step("billing", "sim:writer", "Billing answer to: {{ input }}"),
    "technical": orchnb.Step("technical", "sim:writer", "Tech answer to: {{ input }}"),
    "other": orchnb.Step("other", "sim:writer", "General answer to: {{ input }}"),
}, default="other", cache=False)
tickets = ["I want a refund", "App crash on login", "Where is my parcel?", "Double charge",
           "Error 500 on save", "Change my address", "Invoice missing", "Cannot login"]
for t in tickets:
    router(t)

orchnb.sim_model("mapper", fn=lambda r: "Point: " + r.messages[-1].content[-60:],
                 latency=(0.03, 0.1))
book = orchnb.MapReduce("digest", map=orchnb.Step("summarize_part", "sim:mapper", "{{ input }}"),
                        reduce=orchnb.Step("combine", "sim:writer",
                                           "Combine:{% for o in outputs %} {{ o }}{% endfor %}"),
                        concurrency=6, cache=False)
mr = book([f"Part {i}: the story continues with chapter {i}." for i in range(24)])

def add(a: int, b: int) -> int:
    \"\"\"Add two integers.\"\"\"
    return a + b

orchnb.sim_model("calc", replies=[{"tool": "add", "args": {"a": 20, "b": 22}}, "It is 42."])
agent_run = orchnb.Agent("calculator", "sim:calc", [add], cache=False)("What is 20 + 22?")
df = orchnb.traces()
print(len(df), "spans in", df.run_id.nunique(), "runs")"""),
md("## Latency: one run's timeline (parallel fan-out is visible) and distributions across runs"),
code("mr.trace.plot.timeline()"),
code("run.trace.plot.timeline(color='model')"),
code("df.orch.latency(kind='model')"),
md("## Token cost: by step, by model, tokens (input / cached / output), cumulative over runs"),
code("df.orch.cost(by='step')"),
code("df.orch.cost(by='model')"),
code("df.orch.tokens(by='model')"),
code("df.orch.cumulative_cost()"),
md("## Routing: how often each route was taken; with labels, true label → route"),
code("df.orch.routes()"),
code("""# For labelled data: a router over the five labels of the shipped support tickets
orchnb.sim_model("triage5", rules={
    "refund|charge|invoice|bill|payment|price|subscription": "billing",
    "crash|error|bug|login|password|app|install|slow": "technical",
    "account|email|profile|delete|username|sign": "account",
    "deliver|parcel|package|ship|track|order|arriv": "shipping"}, default="other",
    priced_as="openai:gpt-4o-mini")
router5 = orchnb.Router("support5", classifier=orchnb.Step("classify", "sim:triage5", "{{ input }}"),
                       default="other", routes={
    label: orchnb.Step(label, "sim:writer", label + ": {{ input }}")
    for label in ["billing", "technical", "account", "shipping", "other"]})
report = orchnb.evaluate(router5, orchnb.evals.load_tickets(), progress=False)
print(f"accuracy {report.accuracy:.0%} on {len(report.predictions)} tickets")
orchnb.viz.route_sankey(report.predictions)"""),
code("orchnb.viz.route_heatmap(report.predictions)"),
md("## The pattern graph, coloured by latency (or cost)"),
code("router.runs[-1].trace.plot.graph()"),
code("orchnb.viz.graph(df[df.pipeline == 'digest'], color='cost')"),
md("## Summaries and run comparison"),
code("orchnb.viz.summary_table(df, by='run')"),
code("orchnb.viz.summary(df, by='pipeline')"),
code("""a, b = router.runs[0], router.runs[1]
cmp = orchnb.viz.compare_runs(df, [a.id, b.id])
print("first divergence:", cmp.attrs.get("first_divergence"), "-", cmp.attrs.get("divergence_reason"))
cmp"""),
md("## Export: Parquet / CSV, and OpenTelemetry spans (GenAI semantic conventions)"),
code("""import importlib.util, pathlib
out = pathlib.Path(tempfile.mkdtemp())
orchnb.trace.to_csv(df, out / "traces.csv")
print(pd.read_csv(out / "traces.csv").shape, "read back from CSV")
if importlib.util.find_spec("pyarrow"):
    orchnb.trace.to_parquet(df, out / "traces.parquet")
    print(pd.read_parquet(out / "traces.parquet").shape, "read back from Parquet")
else:
    print("Parquet skipped: pyarrow is not installed (pip install 'orchnb[fast]')")"""),
code("""try:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
except ImportError:
    print("OpenTelemetry skipped: opentelemetry-sdk is not installed (pip install 'orchnb[otel]')")
else:
    exporter = InMemorySpanExporter(); provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    orchnb.trace.to_otel(df[df.run_id == run.id], tracer_provider=provider)
    chat = next(s for s in exporter.get_finished_spans() if s.name.startswith("chat"))
    display({k: v for k, v in chat.attributes.items() if k.startswith("gen_ai")})"""),
code("fake.stop()"),
]
nb = nbf.v4.new_notebook()
nb["cells"] = cells
for i, cell in enumerate(nb.cells):  # stable ids: regenerating an unchanged notebook changes nothing
    cell["id"] = f"charts-{i:02d}"
nb["metadata"]["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
nbf.write(nb, "notebooks/charts.ipynb")
