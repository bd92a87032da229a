"""In a real IPython kernel: sync cells run and step inside the kernel's loop, and a kernel
interrupt cancels a run cleanly, keeping the partial trace."""

from __future__ import annotations

import time

import pytest

pytestmark = pytest.mark.slow


@pytest.fixture
def kernel():
    from jupyter_client.manager import start_new_kernel

    km, kc = start_new_kernel(kernel_name="python3")
    yield km, kc
    kc.stop_channels()
    km.shutdown_kernel(now=True)


def execute(kc, code: str, timeout: float = 60) -> tuple[str, list[dict]]:
    msg_id = kc.execute(code)
    text, errors = [], []
    deadline = time.time() + timeout
    while time.time() < deadline:
        msg = kc.get_iopub_msg(timeout=timeout)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        kind, content = msg["msg_type"], msg["content"]
        if kind == "stream":
            text.append(content["text"])
        elif kind == "error":
            errors.append(content)
        elif kind == "status" and content["execution_state"] == "idle":
            break
    return "".join(text), errors


SETUP = """
import orchnb
orchnb.SimModel("slowish", default="ok", latency=0.4).register()
pipe = orchnb.Chain("k", [orchnb.Step(f"s{i}", "sim:slowish", "{{ input }}") for i in range(6)],
                    cache=False)
"""


def test_sync_run_and_stepping_inside_the_kernel_loop(kernel):
    _, kc = kernel
    out, errors = execute(kc, SETUP + "print(pipe('x').status)\n"
                          "r = pipe.start('y'); r.step(); print(r.status, r.calls)")
    assert not errors, errors
    assert "ok" in out and "paused 1" in out


def test_kernel_interrupt_cancels_and_keeps_partial_trace(kernel):
    km, kc = kernel
    execute(kc, SETUP)
    msg_id = kc.execute("run = None\ntry:\n    pipe('x')\nexcept orchnb.RunCancelled as e:\n"
                        "    run = e.run\n    print('cancelled', run.status)\n")
    time.sleep(1.5)
    km.interrupt_kernel()
    deadline = time.time() + 30
    text = ""
    while time.time() < deadline:
        msg = kc.get_iopub_msg(timeout=30)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "stream":
            text += msg["content"]["text"]
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            break
    assert "cancelled cancelled" in text
    out, errors = execute(kc, "df = run.trace.df\nm = df[df.kind == 'model']\n"
                          "print(sorted(set(m.status)), len(m))\n"
                          "print(len(orchnb.traces(run_id=run.id)) == len(df))")
    assert not errors, errors
    assert "['cancelled', 'ok']" in out and "True" in out


def test_an_uncaught_run_error_and_an_interrupt_are_one_block_in_the_kernel(kernel):
    km, kc = kernel
    code = ("import orchnb, os\nos.environ['OPENAI_API_KEY'] = 'sk-x'\n"
            "os.environ['OPENAI_BASE_URL'] = 'http://127.0.0.1:9/v1'\n"
            "p = orchnb.Chain('dead', [orchnb.Step('a', 'openai:gpt-4o-mini', '{{ input }}')],"
            " cache=False, retry=orchnb.RetryPolicy(max_attempts=1))\np('x')\n")
    _, errors = execute(kc, code)
    assert len(errors) == 1
    shown = "\n".join(errors[0]["traceback"])
    assert len(errors[0]["traceback"]) <= 4, shown
    assert "connection failed" in shown and "http://127.0.0.1:9/v1" in shown
    assert "Traceback" not in shown and "_guarded.py" not in shown
    execute(kc, SETUP + "big = orchnb.MapReduce('big', map=orchnb.Step('m', 'sim:slowish', "
                "'{{ input }}'), reduce=len, concurrency=4, cache=False)\n")
    msg_id = kc.execute("res = big(list(range(200)))")
    time.sleep(2.0)
    km.interrupt_kernel()
    deadline, tb = time.time() + 30, []
    while time.time() < deadline:
        msg = kc.get_iopub_msg(timeout=30)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "error":
            tb = msg["content"]["traceback"]
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            break
    shown = "\n".join(tb)
    assert "RunCancelled" in shown and ".last_run" in shown and "run.trace.df" not in shown
    assert len(tb) <= 4, shown
    out, errors = execute(kc, "r = big.last_run\nprint(r.status, sum(1 for s in r.trace.spans "
                              "if s.kind == 'model' and s.status == 'ok'))")
    assert not errors and out.startswith("cancelled")
    assert f"after {out.split()[1]} finished calls" in shown
