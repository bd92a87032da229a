"""orchnb.Memory (keyword and similarity recall, persisted under ORCHNB_HOME), {{ memory }} in
steps, memory spans, and chat threads (pipe.chat) with trim and summarize policies."""

from __future__ import annotations

import subprocess
import sys

import pytest

import orchnb
from orchnb import Chain, Memory, SimModel, Step, TemplateError
from orchnb.exceptions import BudgetExceeded, SpecError
from orchnb.memory import ChatThread, memory_path


@pytest.fixture
def notes():
    mem = Memory("notes")
    for text, meta in [("Ada prefers email over phone calls", {"user": "ada"}),
                       ("Bob wants invoices sent by post", {"user": "bob"}),
                       ("The office closes at six on Fridays", {}),
                       ("Ada's order A100 shipped in May", {"user": "ada"})]:
        mem.add(text, **meta)
    return mem


def test_add_search_df_and_clear(notes):
    assert len(notes) == 4
    hits = notes.search("how should I contact Ada? email or phone", k=2)
    assert hits[0].text == "Ada prefers email over phone calls"
    assert hits[0].meta == {"user": "ada"} and hits[0].score > hits[1].score
    assert str(hits).startswith("- Ada prefers email")
    df = notes.df
    assert list(df.columns) == ["id", "text", "created", "meta"] and len(df) == 4
    assert df.meta[1] == {"user": "bob"}
    assert Memory("other").search("Ada") == []  # memories are per name
    assert notes.clear() == 4 and len(notes) == 0 and notes.search("Ada") == []


def test_keyword_ranking_is_bm25_over_stemmed_words(notes):
    # "invoicing"/"posted" stem to the stored words; rarer, repeated matches rank higher.
    assert notes.search("invoicing posted")[0].text.startswith("Bob")
    assert {h.text for h in notes.search("Ada")} == {
        "Ada's order A100 shipped in May", "Ada prefers email over phone calls"}
    # Two query words matched rank above one.
    assert notes.search("Ada order")[0].text == "Ada's order A100 shipped in May"
    assert notes.search('"; DROP TABLE memories; --') == []  # user text is never FTS syntax
    assert notes.search("   ") == []


def test_similarity_recall_with_an_embedder(notes):
    sim = Memory("notes", embedder="sim")
    hits = sim.search("emailing Ada", k=1)  # older rows are embedded on first use
    assert hits[0].text == "Ada prefers email over phone calls"
    sim.add("Carol collects stamps")
    assert sim.search("stamp collection", k=1)[0].text == "Carol collects stamps"


def test_memory_written_in_one_process_is_recalled_in_another(orchnb_home):
    code = ("import orchnb; m = orchnb.Memory('shared'); m.add('the wifi password is on the "
            "fridge', room='kitchen')")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    hit = Memory("shared").search("where is the wifi password")[0]
    assert hit.text.startswith("the wifi password") and hit.meta == {"room": "kitchen"}
    assert memory_path().parent == orchnb_home


def test_memory_in_a_step_template_is_recalled_and_traced(notes):
    step = Step("answer", "sim:echo", "Notes:\n{{ memory }}\nQ: {{ input }}", memory=notes)
    run = Chain("support", [step])("how do I contact Ada?")
    assert "- Ada prefers email over phone calls" in run.output
    (span,) = [s for s in run.trace.spans if s.kind == "memory"]
    assert (span.step, span.status, span.tool) == ("answer", "ok", "search")
    assert span.input == "how do I contact Ada?" and "Ada prefers email" in span.output
    df = run.trace.df
    assert "memory" in set(df.kind)
    assert step.describe()["memory"] == "notes"


def test_memory_in_a_template_without_a_memory_fails_at_definition():
    with pytest.raises(TemplateError, match=r"uses \{\{ memory \}\} but there is no memory"):
        Step("s", "sim:echo", "{{ memory }} {{ input }}")
    with pytest.raises(TemplateError, match="no template uses"):
        Step("s", "sim:echo", "{{ input }}", memory="notes")
    with pytest.raises(SpecError, match="memory name"):
        Memory("bad name!")


def test_yaml_step_memory_by_name(notes):
    pipe = orchnb.from_yaml("""
pattern: chain
steps:
  - {name: answer, model: "sim:echo", memory: notes, prompt: "{{ memory }} | {{ input }}"}
""", name="y")
    assert "Bob wants invoices" in pipe("invoices for Bob").output
    with pytest.raises(TemplateError, match=r"line 4.*no memory"):
        orchnb.from_yaml('pattern: chain\nsteps:\n\n'
                         '  - {name: a, model: "sim:echo", prompt: "{{ memory }}"}\n')


def recorder(name: str, seen: list[str], reply=lambda prompt: "ok") -> str:
    SimModel(name, fn=lambda r: (seen.append(r.messages[-1].content), reply(
        r.messages[-1].content))[1]).register()
    return f"sim:{name}"


def test_chat_keeps_a_threads_turns_across_runs():
    seen: list[str] = []
    pipe = Chain("bot", [Step("reply", recorder("chatbot", seen),
                              "{{ history }}\nuser: {{ input }}")])
    assert pipe.chat("My name is Ada", thread="t1").status == "ok"
    pipe.chat("What is my name?", thread="t1")
    assert "user: My name is Ada\nassistant: ok" in seen[-1]
    pipe.chat("hello", thread="t2")  # another thread starts empty
    assert seen[-1] == "\nuser: hello"
    run = pipe.chat("again", thread="t1")
    kinds = [(s.kind, s.tool) for s in run.trace.spans if s.kind == "memory"]
    assert kinds == [("memory", "history"), ("memory", "append")]
    thread = ChatThread("bot", "t1")
    assert [t.role for t in thread.turns()] == ["user", "assistant"] * 3
    assert pipe("no chat").status == "ok"  # {{ history }} is empty outside a chat
    assert seen[-1] == "\nuser: no chat"


def test_chat_history_survives_a_new_process(orchnb_home):
    code = ("import orchnb\n"
            "pipe = orchnb.Chain('bot', [orchnb.Step('r', 'sim:echo', '{{ input }}')])\n"
            "pipe.chat('remember the blue door', thread='p')\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    seen: list[str] = []
    pipe = Chain("bot", [Step("r", recorder("chat2", seen), "{{ history }} || {{ input }}")])
    pipe.chat("which door?", thread="p")
    assert "user: remember the blue door" in seen[-1]


def test_trim_policy_drops_the_oldest_turns_within_the_budget():
    seen: list[str] = []
    pipe = Chain("trim", [Step("r", recorder("chat3", seen), "{{ history }}|{{ input }}")])
    for i in range(6):
        pipe.chat(f"message number {i} " + "word " * 20, thread="t", max_tokens=80)
    history = seen[-1].split("|")[0]
    assert "message number 4" in history and "message number 0" not in history
    assert len(ChatThread("trim", "t").turns()) == 12  # trimmed from the prompt, not the store
    with pytest.raises(BudgetExceeded, match="the message alone"):
        pipe.chat("word " * 200, thread="t", max_tokens=50)


def test_summarize_policy_replaces_old_turns_by_a_summary():
    seen: list[str] = []
    summaries: list[str] = []
    summarizer = recorder("summ", summaries, lambda p: "Ada asked about orders.")
    pipe = Chain("sum", [Step("r", recorder("chat4", seen), "{{ history }}|{{ input }}")])
    for i in range(5):
        run = pipe.chat(f"question {i} " + "word " * 15, thread="s", max_tokens=100,
                        policy="summarize", summarizer=summarizer)
    assert summaries and "question 0" in summaries[0]
    assert "(summary of earlier turns) Ada asked about orders." in seen[-1]
    turns = ChatThread("sum", "s").turns()
    assert turns[0].role == "summary" and len(turns) < 10
    summarized = [s for r in pipe.runs for s in r.trace.spans if s.step == "summarize"]
    assert summarized and summarized[0].kind == "model" and summarized[0].model == "summ"
    assert run.status == "ok"
    with pytest.raises(SpecError, match="needs a summarizer"):
        pipe.chat("x", thread="s", policy="summarize")
    with pytest.raises(SpecError, match="policy must be"):
        pipe.chat("x", thread="s", policy="forget")  # type: ignore[arg-type]


def test_summary_too_long_for_the_budget_is_a_clear_error():
    summarizer = recorder("verbose", [], lambda p: "blah " * 300)
    pipe = Chain("v", [Step("r", "sim:echo", "{{ history }}{{ input }}")])
    for _ in range(3):
        pipe.chat("hello " * 20, thread="v", max_tokens=60)
    with pytest.raises(BudgetExceeded, match="even the summary"):
        pipe.chat("hello", thread="v", max_tokens=60, policy="summarize",
                  summarizer=summarizer)


def test_chat_extracts_facts_into_a_memory():
    facts = Memory("facts")
    extractor = recorder("extract", [], lambda p: "- The user is called Ada\n- Ada lives in Oslo")
    pipe = Chain("x", [Step("r", "sim:echo", "{{ input }}")])
    run = pipe.chat("I'm Ada from Oslo", thread="f", remember=facts, extractor=extractor)
    assert [h.text for h in facts.search("where does Ada live", k=1)] == ["Ada lives in Oslo"]
    assert facts.df.meta[0]["thread"] == "f"
    adds = [s for s in run.trace.spans if s.kind == "memory" and s.tool == "add"]
    assert len(adds) == 2 and all(s.step == "remember" for s in adds)
    with pytest.raises(SpecError, match="extractor"):
        pipe.chat("x", thread="f", remember=facts)


def test_an_agent_recalls_into_its_prompt(notes):
    seen: list[str] = []
    agent = orchnb.Agent("helper", recorder("agentmem", seen, lambda p: "Final Answer: done"),
                         [], prompt="Known:\n{{ memory }}\nTask: {{ input }}", memory=notes,
                         tool_mode="text")
    run = agent("email Ada about her order")
    assert run.output == "done" and "- Ada prefers email" in seen[0]
    assert [s.step for s in run.trace.spans if s.kind == "memory"] == ["helper"]
    pipe = orchnb.from_yaml('pattern: agent\nmodel: "sim:echo"\nmemory: notes\n'
                            'system: "{{ memory }}"\n', name="a", namespace={"notes": notes})
    assert pipe.memory is notes
    with pytest.raises(TemplateError, match="no memory"):
        orchnb.Agent("a", "sim:echo", [], system="{{ memory }}")


def test_similarity_recall_in_a_step_traces_the_embedding(notes):
    sim = Memory("notes", embedder="sim")
    run = Chain("c", [Step("a", "sim:echo", "{{ memory }}", memory=sim)])("emailing Ada")
    assert run.output.startswith("- Ada prefers email")
    kinds = [(s.kind, s.step) for s in run.trace.spans if s.kind in ("memory", "model")]
    assert ("memory", "a") in kinds and kinds.count(("model", "a")) == 2  # embed + the call


def test_sync_memory_calls_work_inside_a_running_loop(notes):
    import asyncio

    async def cell():  # a notebook cell runs inside the kernel's loop
        notes.add("Dana is on leave in June")
        return notes.search("who is on leave", k=1)[0].text

    assert asyncio.run(cell()) == "Dana is on leave in June"
