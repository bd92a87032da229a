"""MapReduce(batch=True) and YAML ``batch: true``: the map through a provider batch, checked
and round-tripped like every other knob."""

from __future__ import annotations

import anthropic  # noqa: F401  (imported at collection, as the other SDK tests do)
import pytest

from orchnb import MapReduce, SpecError, Step, from_yaml

YAML = """\
pattern: mapreduce
map: {name: summarize, model: anthropic:claude-haiku-4-5, prompt: "sum {{ input }}"}
reduce: {name: combine, model: anthropic:claude-haiku-4-5, prompt: "{{ outputs }}"}
batch: true
"""


def test_yaml_batch_maps_through_one_provider_batch(fake_env):
    fake_env.batches.delay = 0.0
    pipe = from_yaml(YAML, name="digest")
    assert pipe.batch is True
    assert "batch: true" in pipe.to_yaml()
    assert from_yaml(pipe.to_yaml(), name="digest").batch is True
    run = pipe.new_run([f"doc {i}" for i in range(12)], cache=False).run_sync()
    assert run.status == "ok", run.error
    spans = [s for s in run.trace.spans if s.kind == "model"]
    mapped = [s for s in spans if s.step == "summarize"]
    assert len(mapped) == 12 and all(s.batch for s in mapped)
    (reduce,) = [s for s in spans if s.step == "combine"]
    assert not reduce.batch  # one call: nothing to batch it with, it runs live
    assert fake_env.batches.creates == 1


def test_batch_knob_is_checked():
    step = Step("m", "sim:echo", "{{ input }}")
    assert "batch" not in MapReduce("plain", map=step).to_yaml()
    with pytest.raises(SpecError, match="batch must be true or false"):
        MapReduce("m", map=step, batch="yes")
    with pytest.raises(SpecError, match="cannot run on Ray"):
        MapReduce("m", map=step, batch=True, executor="ray")
    with pytest.raises(SpecError) as e:
        from_yaml(YAML.replace("batch: true", "batch: [1]"), name="digest")
    assert "batch" in str(e.value)


_CHILD = """
import sys
import orchnb
pipe = orchnb.from_yaml(sys.argv[1], name="digest")
print(pipe.new_run([f"doc {i}" for i in range(12)], cache=False).run_sync().status)
"""


@pytest.mark.slow  # a child Python process (a few seconds of imports); the fast in-process
# resume test is tests/engine/test_batch.py::test_restart_mid_batch_resumes_without_resubmitting
def test_a_killed_kernel_mid_batch_resumes_through_load_run(fake_env):
    """A real kernel restart: a child process submits the batch and is killed before it ends;
    this process reads the run back with ``orchnb.load_run`` and re-runs it, which polls the
    batch the dead kernel paid for instead of submitting it again."""
    import subprocess
    import sys
    import time

    import orchnb
    from orchnb.trace import get_store, stored_batches

    fake_env.batches.delay = None  # the batch runs until the child is gone
    child = subprocess.Popen([sys.executable, "-c", _CHILD, YAML], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not stored_batches(get_store()) and time.monotonic() < deadline:
            assert child.poll() is None, "the child ended before submitting its batch"
            time.sleep(0.02)
    finally:
        child.kill()
        child.wait(10)
    (stored,) = stored_batches(get_store())
    assert stored.status == "running" and fake_env.batches.creates == 1
    fake_env.finish_batches()
    loaded = orchnb.load_run(stored.run_id)
    again = loaded.owner.new_run(loaded.input, cache=False).run_sync()
    assert again.status == "ok", again.error
    assert fake_env.batches.creates == 1  # polled, not paid twice
    mapped = [s for s in again.trace.spans if s.kind == "model" and s.step == "summarize"]
    assert len(mapped) == 12 and all(s.batch for s in mapped)
    assert [b.status for b in stored_batches(get_store())] == ["ended"]
