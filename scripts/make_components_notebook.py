"""Writes notebooks/components.ipynb: structured output, an MCP tool, memory, a dry run.

Run: python scripts/make_components_notebook.py (then scripts/run_notebook.py executes it).
"""

from __future__ import annotations

from pathlib import Path

import nbformat

CELLS = [
    ("md", """# Components: structured output, MCP tools, memory, dry runs

Four pieces a pipeline needs to carry real work, each on the same engine (traced, budgeted,
cached, steppable):

1. **Structured output**: a step returns a validated pydantic object; later steps use its fields.
2. **Tools from an MCP server**: an agent calls a tool served by a real MCP server over stdio
   (the small demo server shipped in `orchnb.testing`). This part needs the `mcp` extra
   (`pip install 'orchnb[mcp]'`); without it the cell says so and skips.
3. **Memory**: facts kept in SQLite under `ORCHNB_HOME`, recalled into a prompt as
   `{{ memory }}`, and a chat thread that remembers earlier turns.
4. **A dry run**: `pipe.preview(x)` shows every prompt and its token count before paying.

Offline on `sim:` models (simulated, labelled everywhere)."""),
    ("code", """import os, sys, tempfile
# A fresh home for traces, cache and memory, so this notebook shows the same story every run.
os.environ["ORCHNB_HOME"] = tempfile.mkdtemp(prefix="orchnb-")

import orchnb
from pydantic import BaseModel"""),
    ("md", """## 1. Structured output feeding a later step

`Step(..., output=Invoice)` asks the model for JSON matching the schema (OpenAI's
`response_format`, Anthropic's forced tool use, or the prompt for models without native support),
validates it, makes one repair call if it is invalid, and hands the *object* to later steps."""),
    ("code", """class Invoice(BaseModel):
    vendor: str
    amount: float
    currency: str

orchnb.SimModel("extractor", default={"json": {"vendor": "ACME", "amount": 1234.5,
                                                "currency": "EUR"}}).register()
bill = orchnb.Chain("bill", [
    orchnb.Step("extract", "sim:extractor", "Extract the invoice fields: {{ input }}",
                output=Invoice),
    orchnb.Step("confirm", "sim:echo",
                "Pay {{ steps.extract.amount }} {{ steps.extract.currency }} "
                "to {{ steps.extract.vendor }}?"),
])
run = bill("Invoice from ACME: EUR 1,234.50, due 1 June")
print(run.output)
run.trace.df[["kind", "step", "output"]]"""),
    ("md", """## 2. An agent using a tool from an MCP server

`orchnb.mcp_tools(command, args)` starts the server, lists its tools and returns them as orchnb
tools: their calls are tool spans like any other (approval, timeout, budget)."""),
    ("code", """import importlib.util

def support_model(request):
    last = request.messages[-1]
    if last.role == "tool":                       # the tool answered: report it
        return f"Order A100: {last.content}."
    return {"tool": "lookup", "args": {"order_id": "A100"}}

orchnb.SimModel("support", fn=support_model).register()
if importlib.util.find_spec("mcp") is None:
    print("skipped: this part needs the MCP SDK: pip install 'orchnb[mcp]'")
else:
    tools = orchnb.mcp_tools(sys.executable, ["-m", "orchnb.testing.mcp_demo_server"])
    print("tools from the server:", [t.name for t in tools])
    support = orchnb.Agent("support", "sim:support", tools, max_iterations=4)
    answer = support("Where is my order A100?")
    print(answer.output)
    display(answer.trace.df[["kind", "step", "tool", "output"]])"""),
    ("md", """## 3. Memory recalled in a later run, and a chat thread

A `Memory` is shared by every run and kernel (SQLite under `ORCHNB_HOME`). A step with
`memory=` gets what is recalled for its input as `{{ memory }}`; the recall is a `memory` span."""),
    ("code", """notes = orchnb.Memory("support-notes")
notes.add("Customer Dana prefers email over phone.", customer="dana")
notes.add("Order B200 is delayed by the supplier until June.", order="B200")

reply = orchnb.Chain("reply", [orchnb.Step(
    "answer", "sim:echo", "Known facts:\\n{{ memory }}\\n\\nQuestion: {{ input }}", memory=notes)])
first = reply("Why is order B200 late?")
print(first.output)"""),
    ("code", """# A later run (it could be another kernel) recalls what was added since.
notes.add("Order B200 now ships on 3 June.", order="B200")
second = reply("When does order B200 ship?")
print(second.output)
second.trace.df[second.trace.df.kind == "memory"][["step", "tool", "input", "output"]]"""),
    ("code", """# A chat thread keeps its turns (across runs and kernels) within a token budget.
import re

def host(request):
    prompt = request.messages[-1].content
    if "my name?" in prompt:
        names = re.findall(r"[Mm]y name is (\\w+)", prompt)
        return f"You are {names[-1]}." if names else "I don't know yet."
    return "Nice to meet you."

orchnb.SimModel("host", fn=host).register()
chat = orchnb.Chain("chat", [orchnb.Step(
    "turn", "sim:host", "Conversation so far:\\n{{ history }}\\nUser: {{ input }}")])
print(chat.chat("My name is Dana.", thread="dana").output)
print(chat.chat("What is my name?", thread="dana").output)
print(chat.chat("What is my name?", thread="someone-else").output)   # another thread"""),
    ("md", """## 4. A dry run: every prompt and its tokens, no call made

Steps whose prompts take earlier outputs show them as `⟪…⟫`. In a `%%orch` notebook the same
is `%orch run NAME INPUT --dry-run`."""),
    ("code", """bill.preview("Invoice from ACME: EUR 1,234.50, due 1 June")"""),
]


def main() -> None:
    nb = nbformat.v4.new_notebook()
    for i, (kind, source) in enumerate(CELLS):
        make = nbformat.v4.new_markdown_cell if kind == "md" else nbformat.v4.new_code_cell
        cell = make(source)
        cell["id"] = f"components-{i}"
        nb.cells.append(cell)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    out = Path(__file__).resolve().parents[1] / "notebooks" / "components.ipynb"
    nbformat.write(nb, out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
