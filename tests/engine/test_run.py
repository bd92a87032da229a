"""Runs, stepping, budgets, cancellation and persistence with sim: models (no network)."""

from __future__ import annotations

import asyncio
import math
import subprocess
import sys
import threading
import time

import pandas as pd
import pytest

import orchnb
from orchnb import Budget, BudgetExceeded, Chain, RunCancelled, SimModel, Step
from orchnb.trace import COLUMNS


def two_step_chain(model: str = "sim:echo", **options) -> Chain:
    return Chain("brief", [
        Step("summarize", model, "Summarize: {{ input }}"),
        Step("classify", model, "Kind? {{ steps.summarize }}"),
    ], **options)


def test_chain_runs_to_the_end_and_passes_outputs_along():
    run = two_step_chain()("an invoice")
    assert run.status == "ok"
    assert run.output == "Kind? Summarize: an invoice"
    df = run.trace.df
    assert list(df.columns) == list(COLUMNS)
    assert df.kind.tolist().count("model") == 2
    assert set(df.step) == {"brief", "summarize", "classify"}


def test_trace_parent_ids_form_run_step_call_tree():
    df = two_step_chain()("x").trace.df
    by_id = df.set_index("span_id")
    root = df[df.kind == "run"].iloc[0]
    assert pd.isna(root.parent_id)
    for _, span in df[df.kind == "model"].iterrows():
        parent = by_id.loc[span.parent_id]
        assert parent.kind == "step" and parent.step == span.step
        assert by_id.loc[parent.parent_id].kind == "run"


def test_sim_calls_are_marked_simulated_with_estimated_tokens():
    run = two_step_chain()("hello there")
    models = run.trace.df[run.trace.df.kind == "model"]
    assert models.simulated.all()
    assert (models.input_tokens > 0).all()
    assert run.simulated and "simulated" in repr(run)


def test_start_pauses_at_each_model_call():
    run = two_step_chain().start("contract")
    assert run.status == "paused" and run.calls == 0
    assert run.pending[0].step == "summarize"
    run.step()
    assert run.calls == 1 and run.pending[0].step == "classify"
    run.step()
    assert run.status == "ok" and run.output == "Kind? Summarize: contract"


def test_stepping_a_finished_run_warns_and_says_what_to_do():
    run = two_step_chain()("contract")
    with pytest.warns(orchnb.exceptions.OrchnbWarning, match=r"already ended \(ok\).*"
                      r"pipe\.start\(input\).*run\.fork"):
        assert run.step() is run
    assert run.status == "ok" and run.calls == 2


def test_resume_runs_to_the_end():
    run = two_step_chain().start("contract").resume()
    assert run.done and run.status == "ok"


def test_breakpoint_pauses_only_at_named_step():
    run = two_step_chain().start("x", stepping=False, breakpoints=["classify"])
    assert run.status == "paused" and run.calls == 1
    assert run.pending[0].step == "classify"
    assert run.resume().status == "ok"


def test_sync_call_works_inside_a_running_event_loop():
    # A plain sync cell in Jupyter runs while the kernel's loop is running.
    async def cell():
        run = two_step_chain()("inside a loop")
        stepped = two_step_chain().start("stepped")
        stepped.step(2)
        return run, stepped

    run, stepped = asyncio.run(cell())
    assert run.status == "ok" and stepped.status == "ok"


def test_arun_from_async_code():
    run = asyncio.run(two_step_chain().arun("awaited"))
    assert run.output == "Kind? Summarize: awaited"


def test_budget_exceeded_mid_chain_keeps_and_persists_the_trace():
    pipe = two_step_chain(budget=Budget(max_calls=1))
    with pytest.raises(BudgetExceeded) as info:
        pipe("x")
    run = info.value.run
    assert run.status == "budget_exceeded" and info.value.limit == "calls"
    assert "max_calls" in str(info.value) and "classify" in str(info.value)
    df = run.trace.df
    assert df[df.kind == "model"].shape[0] == 1
    stored = orchnb.traces(run_id=run.id)
    assert len(stored) == len(df)
    assert stored[stored.kind == "run"].status.iloc[0] == "budget_exceeded"


def test_usd_budget_uses_priced_cost():
    SimModel("pricey", default="ok " * 50, priced_as="openai:gpt-4o").register()
    pipe = two_step_chain("sim:pricey", budget=Budget(max_usd=1e-9), cache=False)
    with pytest.raises(BudgetExceeded) as info:
        pipe("x")
    assert info.value.limit == "usd" and info.value.run.cost_usd > 0


def test_cancel_keeps_partial_trace():
    SimModel("slow", default="done", latency=0.3).register()
    pipe = two_step_chain("sim:slow", cache=False)
    holder = {}

    def cancel_soon():
        time.sleep(0.45)
        holder["run"] = pipe.last_run
        pipe.last_run.cancel()

    async def cell():
        threading.Thread(target=cancel_soon).start()
        return pipe("x")  # sync call inside a running loop: goes to the engine thread

    with pytest.raises(RunCancelled) as info:
        asyncio.run(cell())
    run = info.value.run
    assert run.status == "cancelled"
    df = run.trace.df
    statuses = dict(zip(df[df.kind == "model"].step, df[df.kind == "model"].status))
    assert statuses == {"summarize": "ok", "classify": "cancelled"}


def test_keyboard_interrupt_cancels_run_cleanly(tmp_path, orchnb_home):
    script = tmp_path / "interrupt.py"
    script.write_text(
        "import os, signal, threading, time, orchnb\n"
        # a child inherits an ignored SIGINT (an earlier test's in-process kernel ignores it
        # between cells): give it Python's own handler, as a user's script has
        "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
        "orchnb.SimModel('slow', default='x', latency=30).register()\n"
        "pipe = orchnb.Chain('p', [orchnb.Step('a', 'sim:slow', '{{ input }}')])\n"
        "threading.Timer(0.5, lambda: os.kill(os.getpid(), signal.SIGINT)).start()\n"
        "t = time.time()\n"
        "try:\n    pipe('x')\nexcept orchnb.RunCancelled as e:\n"
        "    print('CANCELLED', e.run.status, round(time.time() - t, 1))\n"
        "df = orchnb.traces()\nprint(sorted(df.status))\n")
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=60, env={**__import__('os').environ})
    assert "CANCELLED cancelled" in out.stdout, out.stderr
    # the call would take 30 s: ending well before means the interrupt cancelled it (a loaded
    # machine may deliver the 0.5 s timer's signal seconds late)
    assert float(out.stdout.split()[2]) < 20
    assert "'cancelled'" in out.stdout


def test_traces_survive_a_new_process(orchnb_home):
    run = two_step_chain()("persist me")
    code = ("import orchnb; df = orchnb.traces(); "
            f"print(len(df[df.run_id == '{run.id}']), df.pipeline.unique().tolist())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert out.stdout.split()[0] == str(len(run.trace))
    assert "brief" in out.stdout


def test_response_cache_answers_repeats_and_reports_savings():
    SimModel("paid", default="answer", priced_as="openai:gpt-4o-mini").register()
    pipe = two_step_chain("sim:paid")
    first = pipe("same input")
    second = pipe("same input")
    m1 = first.trace.df[first.trace.df.kind == "model"]
    m2 = second.trace.df[second.trace.df.kind == "model"]
    assert not m1.cached.any() and m2.cached.all()
    assert second.cost_usd == 0 and math.isclose(m2.saved_usd.sum(), first.cost_usd)
    third = pipe("same input", cache=False)
    assert not third.trace.df[third.trace.df.kind == "model"].cached.any()


def test_a_cache_salt_keys_chat_calls_apart_and_each_salt_is_cached():
    SimModel("salted", default="answer").register()
    pipe = two_step_chain("sim:salted")
    cached = []
    for salt in (None, "repeat:1", "repeat:1", None, "repeat:2"):
        run = pipe.new_run("same", cache_salt=salt)
        run.run_sync()
        cached.append(bool(run.trace.df.query("kind == 'model'").cached.all()))
    assert cached == [False, False, True, True, False]


def test_unknown_price_is_nan_and_counted_not_zero():
    from orchnb.models import Usage, cost_usd

    cost, priced = cost_usd("openai", "gpt-unknown-model", Usage(10, 10))
    assert math.isnan(cost) and not priced


def test_python_function_steps_and_nested_chains():
    inner = Chain("inner", [Step("shout", "sim:echo", "{{ input | upper }}")])
    pipe = Chain("outer", [str.strip, inner, lambda s: s + "!"])
    run = pipe("  hi  ")
    assert run.output == "HI!"
    df = run.trace.df
    assert (df[df.kind == "pattern"].pattern == "chain").all()
    inner_span = df[df.step == "inner"].iloc[0]
    shout = df[(df.step == "shout") & (df.kind == "step")].iloc[0]
    assert shout.parent_id == inner_span.span_id


def test_hooks_see_every_span():
    seen = []

    class Hook:
        def on_span_end(self, *, span):
            seen.append(span.kind)

    run = two_step_chain()("x", hooks=[Hook()])
    assert sorted(seen) == sorted(s.kind for s in run.trace.spans)


def test_run_displays_show_money_with_its_significant_digits():
    SimModel("cheap-money", default="ok", priced_as="openai:gpt-4o-mini").register()
    pipe = Chain("money", [Step("a", "sim:cheap-money", "{{ input }}")])
    paused = pipe.start("hello")
    assert "· $0<" in paused._repr_html_() and "$0.000000" not in paused._repr_html_()
    run = paused.resume() or paused
    cost = run.cost_usd
    assert 0 < cost < 1e-4
    shown = orchnb.trace.fmt_usd(cost)
    assert shown in repr(run) and shown in run._repr_html_()
    assert len(shown.rstrip("0").split(".")[1].lstrip("0")) <= 3  # three significant digits
