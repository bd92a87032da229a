"""The playground in a real browser: JupyterLab + headless Chromium, clicked as a person would.

Every check compares what the page shows with what the kernel holds (queried through the
notebook's own kernel connection), so the widget is tested against the Python-side run.
"""

from __future__ import annotations

import json
import time

import pytest
from _jupyter import open_notebook

pytestmark = [pytest.mark.slow, pytest.mark.browser]

SETUP = '''\
%load_ext orchnb
import json
import orchnb
from orchnb import Agent, Chain, SimModel, Step

SimModel("triage", rules={"refund|charge|invoice": "billing"}, default="technical").register()
SimModel("slow", default="still thinking", latency=0.4).register()

def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b

def lookup(q: str) -> str:
    """Look a word up in the glossary."""
    return f"{q}: a word"

SimModel("calc", fn=Agent.sim_policy([("add", {"a": 2, "b": 3}), ("lookup", {"q": "sum"})],
                                     "Done: {observation}")).register()

def state(pg):
    """What the kernel knows about a playground's run, for the browser test to compare."""
    run = pg.current_run
    spans = sorted(run.trace.spans, key=lambda s: s.start) if run else []
    pending = run.pending if run else []
    first = pending[0] if pending else None
    return json.dumps({
        "status": run.status if run else "idle",
        "pending": [[b.kind, b.step, b.name] for b in pending],
        "messages": ([m.content for m in first.request.messages]
                     if first and first.kind == "model" else []),
        "arguments": first.request if first and first.kind == "tool" else None,
        "calls": [[s.kind, s.step, s.tool, s.status, s.input, s.output, s.error] for s in spans
                  if s.kind in ("model", "tool")],
        "output": run.output if run else None,
        "history": len(pg.history), "edits": pg.edits,
    })
'''

ROUTER = '''\
%%orch triage
pattern: router
classifier:
  model: sim:triage
  prompt: "Route this message: {{ input }} (labels: {{ labels | join(', ') }})"
routes:
  billing:
    model: sim:echo
    prompt: "Billing team answers: {{ input }}"
  technical:
    pattern: chain
    name: tech
    steps:
      - name: diagnose
        model: sim:echo
        prompt: "Diagnose: {{ input }}"
      - name: reply
        model: sim:echo
        prompt: "Reply kindly: {{ input }}"
default: technical
'''

AGENT = '''\
%%orch helper
pattern: agent
model: sim:calc
tools: [add, lookup]
max_iterations: 5
'''

CELLS = [
    SETUP,
    ROUTER,
    'pg = orchnb.Playground(triage, input="my screen stays black")\npg',
    AGENT,
    'apg = orchnb.Playground(helper, input="what is 2 + 3?", approve_tools=True)\napg',
    'slow = Chain("slow", [Step(f"s{i}", "sim:slow", f"step {i}: {{{{ input }}}}") '
    'for i in range(8)])\n'
    'spg = orchnb.Playground(slow, input="x")\nspg',
    'tv = orchnb.TraceView()\ntv',
    'orchnb.viz.timeline(triage("refund my invoice").trace.df)',
]

KERNEL_EXEC = """async (code) => {
  const panel = window.jupyterapp.shell.currentWidget;
  const kernel = panel.sessionContext.session.kernel;
  const future = kernel.requestExecute({code, silent: false, store_history: false});
  let out = "";
  future.onIOPub = (msg) => {
    if (msg.header.msg_type === "stream") out += msg.content.text;
    if (msg.header.msg_type === "error")
      out += "ERROR " + msg.content.ename + ": " + msg.content.evalue;
  };
  await future.done;
  return out;
}"""


class Notebook:
    """A notebook page plus a way to ask its kernel questions."""

    def __init__(self, page):
        self.page = page

    def kernel(self, code: str) -> str:
        return self.page.evaluate(KERNEL_EXEC, code)

    def state(self, name: str) -> dict:
        out = self.kernel(f"print(state({name}))")
        assert not out.startswith("ERROR"), out
        return json.loads(out)

    def widget(self, pipeline: str):
        return self.page.locator(f".orchnb-pg[data-pipeline='{pipeline}']")

    def wait_settled(self, pipeline: str, previous: str, timeout: float = 15_000) -> None:
        """After a click: wait until the run moved on (new next step, or an end) and is idle."""
        self.page.wait_for_function(
            """([name, prev]) => {
              const el = document.querySelector(`.orchnb-pg[data-pipeline='${name}']`);
              if (!el || el.dataset.busy !== "false") return false;
              const sig = el.dataset.run + "|" + el.dataset.status + "|" + el.dataset.current
                + "|" + (el.dataset.approval || "");
              return sig !== prev && !["pending", "running"].includes(el.dataset.status);
            }""", arg=[pipeline, previous], timeout=timeout)

    def signature(self, pipeline: str) -> str:
        return self.page.evaluate(
            """(name) => { const el = document.querySelector(`.orchnb-pg[data-pipeline='${name}']`);
              return el.dataset.run + "|" + el.dataset.status + "|" + el.dataset.current + "|"
                + (el.dataset.approval || ""); }""", pipeline)


@pytest.fixture(scope="module")
def notebook(lab, browser_context):
    page = open_notebook(lab, browser_context, "playground_test.ipynb", CELLS)
    page.wait_for_selector(".orchnb-pg[data-pipeline='slow']", timeout=60_000)
    page.wait_for_selector(".jp-OutputArea-output.js-plotly-plot .main-svg", timeout=60_000)
    yield Notebook(page)
    page.close()


def _shot(nb: Notebook, pipeline: str, artifacts, name: str) -> None:
    nb.widget(pipeline).screenshot(path=str(artifacts / f"{name}.png"))


def test_router_steps_one_call_at_a_time_as_the_kernel_sees_it(notebook, artifacts):
    nb, w = notebook, notebook.widget("triage")
    expected_nodes = []
    for _ in range(6):
        before = nb.signature("triage")
        w.locator("button.opg-step").click()
        nb.wait_settled("triage", before)
        st = nb.state("pg")
        if st["status"] != "paused":
            break
        _kind, step, _name = st["pending"][0]
        nxt = w.locator(".opg-node.opg-next")
        assert nxt.count() == 1
        key = nxt.get_attribute("data-key")
        assert key.rsplit("/", 1)[-1] == step
        expected_nodes.append(key)
        # the detail pane follows the step and shows the rendered prompt of the waiting call
        detail = w.locator(".opg-detail")
        assert detail.get_attribute("data-key") == key
        waiting = detail.locator(".opg-waiting pre").first.inner_text()
        assert waiting == st["messages"][-1]
        # finished calls are coloured by their status
        for _c_kind, c_step, *_ in st["calls"]:
            node = w.locator(f".opg-node[data-label='{c_step}']")
            assert node.get_attribute("data-status") == "ok"
        if len(expected_nodes) == 2:
            _shot(nb, "triage", artifacts, "01-router-paused")
    assert st["status"] == "ok"
    assert expected_nodes == ["triage/classify", "triage/tech/diagnose", "triage/tech/reply"]
    assert [c[1] for c in st["calls"]] == ["classify", "diagnose", "reply"]
    assert w.locator(".opg-final").inner_text() == st["output"]
    assert w.locator(".opg-node[data-key='triage/billing']").get_attribute("data-status") == ""
    # the detail pane of a finished step: its prompt, output, tokens
    w.locator(".opg-node[data-key='triage/tech/diagnose']").click()
    # the pane re-renders after the click: wait for it to show the clicked step
    call = w.locator(".opg-detail[data-key='triage/tech/diagnose'] "
                     ".opg-call[data-kind='model']").first
    call.wait_for()
    assert call.locator(".opg-output").inner_text() == st["calls"][1][5]
    assert "tokens" in call.locator(".opg-facts").inner_text()


def test_edit_a_prompt_rerun_compare_and_write_back(notebook, artifacts):
    nb, w = notebook, notebook.widget("triage")
    w.locator(".opg-node[data-key='triage/classify']").click()
    w.locator(".opg-edit-wrap summary").click()
    w.locator(".opg-edit-wrap textarea[data-field='prompt']").fill("Which team? {{ input }}")
    w.locator(".opg-edit-wrap .opg-field[data-field='temperature']").fill("0.2")
    w.locator("button.opg-apply").click()
    nb.page.wait_for_function("""() => document.querySelector(
        ".orchnb-pg[data-pipeline='triage'] .opg-yaml").textContent.includes("Which team?")""")
    assert nb.state("pg")["edits"] == {"triage/classify": {"prompt": "Which team? {{ input }}",
                                                           "temperature": 0.2}}
    assert "temperature: 0.2" in w.locator(".opg-yaml").inner_text()
    w.locator("textarea.opg-input").fill("I want a refund for invoice 42")
    before = nb.signature("triage")
    w.locator("button.opg-run").click()
    nb.wait_settled("triage", before)
    st = nb.state("pg")
    assert st["status"] == "ok" and st["history"] == 2
    assert st["calls"][0][4] == "Which team? I want a refund for invoice 42"
    assert w.locator(".opg-final").inner_text() == st["output"]
    assert w.locator(".opg-node[data-key='triage/billing']").get_attribute("data-status") == "ok"
    assert w.locator(".opg-edge-label.opg-taken").all_text_contents() == ["billing"]
    # compare the two runs of the history
    picks = w.locator("input.opg-pick")
    assert picks.count() == 2
    picks.nth(0).check()
    picks.nth(1).check()
    w.locator("button.opg-compare-btn").click()
    table = w.locator(".opg-compare-table")
    table.wait_for()
    assert "first divergence: classify" in w.locator(".opg-compare .opg-facts").inner_text()
    _shot(nb, "triage", artifacts, "02-router-edited-compared")
    # write the edit back into the pipeline and its YAML
    w.locator("button.opg-writeback").click()
    nb.page.wait_for_function("""() => !document.querySelector(
        ".orchnb-pg[data-pipeline='triage'] .opg-yaml-wrap").classList.contains("opg-has-edits")""")
    out = nb.kernel("print(triage.classifier.prompt.source, '|', 'Which team?' in triage.source)")
    assert out.strip() == "Which team? {{ input }} | True"


def test_agent_tool_calls_wait_for_approval_edit_and_reject(notebook, artifacts):
    nb, w = notebook, notebook.widget("helper")
    seen = []
    for _ in range(10):
        before = nb.signature("helper")
        card = w.locator(".opg-approval-card")
        if card.count():
            st = nb.state("apg")
            kind, _step, name = st["pending"][0]
            assert kind == "tool" and card.get_attribute("data-tool") == name
            assert w.locator(".opg-node.opg-next").get_attribute("data-key") == f"helper/{name}"
            assert json.loads(card.locator("textarea.opg-args").input_value()) == st["arguments"]
            seen.append(name)
            if name == "add":
                card.locator("textarea.opg-args").fill('{"a": 20, "b": 3}')
                _shot(nb, "helper", artifacts, "03-agent-approval")
                card.locator("button.opg-approve").click()
            else:
                card.locator("input.opg-reason").fill("not needed")
                card.locator("button.opg-reject").click()
        else:
            w.locator("button.opg-step").click()
        nb.wait_settled("helper", before)
        st = nb.state("apg")
        if st["status"] == "paused" and st["pending"][0][0] == "model":
            assert w.locator(".opg-node.opg-next").get_attribute("data-key") == "helper/helper"
            waiting = w.locator(".opg-detail .opg-waiting").first
            assert waiting.get_attribute("data-kind") == "model"
        if st["status"] not in ("paused", "running"):
            break
    assert seen == ["add", "lookup"]
    assert st["status"] == "ok"
    tools = [c for c in st["calls"] if c[0] == "tool"]
    assert json.loads(tools[0][4]) == {"a": 20, "b": 3} and tools[0][5] == "23"
    assert tools[1][6] == "rejected by user"
    assert st["output"] == "Done: The user rejected this call to lookup: not needed"
    assert w.locator(".opg-final").inner_text() == st["output"]
    assert w.locator(".opg-node[data-key='helper/lookup']").get_attribute(
        "data-status") == "rejected"
    assert w.locator(".opg-node[data-key='helper/add']").get_attribute("data-status") == "ok"
    w.locator(".opg-node[data-key='helper/add']").click()
    tool_call = w.locator(".opg-detail .opg-call[data-kind='tool']").first
    tool_call.wait_for()
    assert "23" in tool_call.locator(".opg-output").inner_text()
    _shot(nb, "helper", artifacts, "04-agent-done")


def test_kernel_interrupt_stops_a_background_run(notebook):
    nb, w = notebook, notebook.widget("slow")
    w.locator("button.opg-run").click()
    nb.page.wait_for_function("""() => document.querySelector(
        ".orchnb-pg[data-pipeline='slow']").dataset.status === "running" """)
    # the kernel answers while the run goes on in the background
    t0 = time.perf_counter()
    assert nb.kernel("print(spg.current_run.status)").strip() == "running"
    assert time.perf_counter() - t0 < 0.4
    time.sleep(0.3)
    nb.page.evaluate("() => window.jupyterapp.commands.execute('kernelmenu:interrupt')")
    nb.page.wait_for_function("""() => { const el = document.querySelector(
        ".orchnb-pg[data-pipeline='slow']"); return el.dataset.status === "cancelled"
        && el.dataset.busy === "false"; }""")
    st = nb.state("spg")
    assert st["status"] == "cancelled"
    assert 0 < len(st["calls"]) < 8
    # the kernel is still fine, and the widget's buttons still work afterwards
    assert nb.kernel("print(1 + 1)").strip() == "2"


def test_plotly_charts_render(notebook):
    svg = notebook.page.locator(".jp-OutputArea-output.js-plotly-plot .main-svg").first
    assert svg.is_visible()


def test_trace_view_lists_the_spans_of_runs(notebook, artifacts):
    rows = notebook.page.locator(".orchnb-tv tbody tr")
    rows.first.wait_for()
    total = int(notebook.kernel("print(tv.total)"))
    assert total >= 6 and rows.count() == min(total, 200)
    assert {"run", "step", "model", "tool"} <= set(rows.locator("td.otv-kind").all_inner_texts())
    notebook.page.locator(".orchnb-tv").screenshot(path=str(artifacts / "05-trace-view.png"))


FORK_STATE = """r = pg.current_run
print(json.dumps({"id": r.id, "forked_from": r.forked_from, "status": r.status,
    "calls": [[s.step, bool(s.replayed), s.input] for s in sorted(r.trace.spans,
              key=lambda s: s.start) if s.kind == "model"]}))"""


def test_fork_here_replays_the_earlier_calls_and_compares_with_the_parent(notebook, artifacts):
    nb, w = notebook, notebook.widget("triage")
    w.locator("textarea.opg-input").fill("my screen flickers")
    before = nb.signature("triage")
    w.locator("button.opg-run").click()
    nb.wait_settled("triage", before)
    parent = json.loads(nb.kernel(FORK_STATE))
    assert [c[0] for c in parent["calls"]] == ["classify", "diagnose", "reply"]
    # "Fork here" on the finished `reply` step, with an edited prompt
    w.locator(".opg-node[data-key='triage/tech/reply']").click()
    w.locator(".opg-detail[data-key='triage/tech/reply'] .opg-call").first.wait_for()
    w.locator(".opg-edit-wrap summary").click()
    w.locator(".opg-edit-wrap textarea[data-field='prompt']").fill("In one line: {{ input }}")
    fork_btn = w.locator("button.opg-fork")
    assert fork_btn.is_enabled()
    before = nb.signature("triage")
    fork_btn.click()
    nb.wait_settled("triage", before)
    fork = json.loads(nb.kernel(FORK_STATE))
    assert fork["forked_from"] == parent["id"] and fork["status"] == "ok"
    assert [(c[0], c[1]) for c in fork["calls"]] == [
        ("classify", True), ("diagnose", True), ("reply", False)]
    assert fork["calls"][2][2].startswith("In one line: ")
    # parent and fork side by side: the first divergence is the forked step
    facts = w.locator(".opg-compare .opg-facts")
    facts.wait_for()
    assert "first divergence: reply" in facts.inner_text()
    assert w.locator(".opg-compare-table").is_visible()
    assert "fork" in w.locator(f"tr[data-run='{fork['id']}'] td").nth(1).inner_text()
    assert w.locator(f"tr[data-run='{fork['id']}'] input.opg-pick").is_checked()
    assert w.locator(f"tr[data-run='{parent['id']}'] input.opg-pick").is_checked()
    assert "fork of run" in w.locator(".opg-message").inner_text()
    # the fork's edit shows under "Edits and YAML", with the YAML that keeps it
    info = w.locator(".opg-fork-info")
    assert f"fork of run {parent['id']} at tech/reply edited prompt" in info.inner_text()
    assert "In one line: {{ input }}" in w.locator(".opg-fork-yaml").inner_text()
    # the pipeline itself is untouched: the edit belonged to the fork only
    out = nb.kernel("print(triage.routes['technical'].steps[1].prompt.source)")
    assert out.strip() == "Reply kindly: {{ input }}"
    _shot(nb, "triage", artifacts, "06-router-forked")
