"""Tools from a real MCP server (the demo server shipped in orchnb.testing) over stdio and
streamable HTTP, through agents, YAML and a real kernel; missing, crashing and hanging servers."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("mcp", reason="MCP tests need the mcp SDK: pip install 'orchnb[mcp]'")

import orchnb
from orchnb import Agent, SpecError, ToolError
from orchnb.models import resolve_model
from orchnb.testing import FakeProvider, FakeReply
from orchnb.tools import MCPTool, mcp_tools

SERVER = str(Path(orchnb.__file__).parent / "testing" / "mcp_demo_server.py")
PY = sys.executable


def demo(*flags: str, **kwargs) -> list[MCPTool]:
    return mcp_tools(PY, [SERVER, *flags], **kwargs)


def sim_agent(name: str, calls, tools, **kwargs) -> Agent:
    orchnb.SimModel(name, fn=Agent.sim_policy(calls, "Answer: {observation}")).register()
    return Agent(name, f"sim:{name}", tools, **kwargs)


def tool_spans(run):
    return [s for s in run.trace.spans if s.kind == "tool"]


def test_mcp_tools_lists_the_servers_tools_with_their_schemas():
    lookup, add = demo()
    assert (lookup.name, add.name) == ("lookup", "add")
    assert lookup.description.startswith("Look up the status of an order")
    assert add.spec.parameters["required"] == ["a", "b"]
    assert add.spec.parameters["properties"]["a"]["type"] == "integer"
    assert add(a=2, b=3) == "5"  # outside a run, for trying a tool in a cell
    assert "lookup" in repr(lookup) and "mcp_demo_server" in repr(lookup)
    assert [t.name for t in demo(include=["add"])] == ["add"]
    with pytest.raises(SpecError, match=r"no tool"):
        demo(include=["nope"])


def test_agent_calls_an_mcp_tool_over_the_real_openai_sdk(monkeypatch):
    with FakeProvider() as fake:
        model = resolve_model("openai:fake-model", base_url=fake.openai_base_url,
                              api_key="sk-fake")
        agent = Agent("support", model, [demo()], system="Use tools.")
        fake.script([FakeReply(tool_calls=[("lookup", {"order_id": "A100"})]),
                     "It shipped."])
        run = agent("where is A100?", cache=False)
        assert (run.status, run.output) == ("ok", "It shipped.")
        assert fake.requests[0].tools == ["lookup", "add"]
        assert fake.requests[1].messages[-1]["content"] == "shipped on 2 May"
        (span,) = tool_spans(run)
        assert (span.status, span.output) == ("ok", "shipped on 2 May")


def test_the_same_mcp_session_serves_repeated_runs_from_any_loop():
    agent = sim_agent("mcp_rep", [("add", {"a": 2, "b": 40})], [demo()])
    assert [agent("x").output for _ in range(3)] == ["Answer: 42"] * 3

    async def in_a_running_loop():
        return (await agent.arun("y")).output

    assert asyncio.run(in_a_running_loop()) == "Answer: 42"
    spans = tool_spans(agent.last_run)
    assert [(s.tool, s.status) for s in spans] == [("add", "ok")]


def test_bad_arguments_are_an_observation_not_a_crash():
    agent = sim_agent("mcp_bad", [("add", {"a": "two", "b": 1})], [demo()])
    run = agent("x")
    assert run.status == "ok"
    assert "'two' is not of type 'integer'" in run.output
    assert tool_spans(run)[0].status == "error"


def test_mcp_tool_calls_wait_for_approval_when_stepping():
    agent = sim_agent("mcp_step", [("lookup", {"order_id": "B200"})], [demo()])
    run = agent.start("x", approve_tools=True, stepping=False)
    assert run.status == "paused" and run.pending[0].name == "lookup"
    run.approve()
    run.resume()
    assert run.output == "Answer: waiting for stock"


def test_a_missing_command_is_a_clear_error_naming_it():
    with pytest.raises(ToolError, match=r"no-such-mcp-server.*installed and on PATH"):
        mcp_tools("no-such-mcp-server", ["--x"])


@pytest.mark.slow  # starts two servers
def test_a_server_that_crashes_mid_call_becomes_an_observation_and_restarts():
    tools = demo("--crash")
    agent = sim_agent("mcp_crash", [("lookup", {"order_id": "A100"})], tools)
    run = agent("x")
    assert run.status == "ok"
    assert "failed while serving 'lookup'" in run.output and "--crash" in run.output
    # The next call starts the server again (and it crashes again, cleanly).
    run = agent("x")
    assert "failed while serving 'lookup'" in run.output


def test_a_crash_names_its_exit_code_and_only_its_own_stderr():
    (lookup,) = demo("--crash", include=["lookup"])
    with pytest.raises(ToolError, match=r"(?s)exited with code 3.*looking up A100") as first:
        lookup(order_id="A100")
    with pytest.raises(ToolError, match=r"(?s)exited with code 3.*looking up B200") as second:
        lookup(order_id="B200")  # a new server process, and a new failure
    assert "B200" not in str(first.value) and "A100" not in str(second.value)


def _running(marker: str) -> list[int]:
    out = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True).stdout
    return [int(pid) for pid in out.split()]


@pytest.mark.slow  # a Python process and a server per case
@pytest.mark.parametrize("mode", ["hang-call", "hang-start"])
def test_a_hung_server_does_not_outlive_python(tmp_path, mode):
    marker = f"orchnb-hung-{mode}-{time.monotonic_ns()}"
    flag, kwargs = (("--hang", "timeout=1") if mode == "hang-call"
                    else ("--hang-start", "connect_timeout=1"))
    script = f"""
import orchnb
try:
    tools = orchnb.mcp_tools({PY!r}, [{SERVER!r}, {flag!r}, {marker!r}], {kwargs})
    tools[0](order_id="A100")
except orchnb.ToolError as e:
    print("refused:", str(e)[:80])
"""
    started = time.monotonic()
    subprocess.run([PY, "-c", script], timeout=60, check=True, capture_output=True)
    took = time.monotonic() - started
    try:
        deadline = time.monotonic() + 5
        while _running(marker) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _running(marker) == []  # the hung server was stopped when Python exited
    finally:
        for pid in _running(marker):
            subprocess.run(["kill", "-9", str(pid)], check=False)
    assert took < 45


@pytest.mark.slow  # starts two servers
def test_a_hanging_tool_times_out_and_the_kernel_stays_free():
    agent = sim_agent("mcp_hang", [("lookup", {"order_id": "A100"}), ("add", {"a": 1, "b": 1})],
                      demo("--hang", timeout=1))
    run = agent("x")
    assert run.status == "ok"
    (hung, added) = tool_spans(run)
    assert hung.status == "error" and "timed out after 1s" in hung.output
    assert added.status == "ok"  # the server was restarted for the next call


def test_the_engines_tool_timeout_also_bounds_mcp_calls():
    agent = sim_agent("mcp_hang2", [("lookup", {"order_id": "A100"})], demo("--hang"))
    before = orchnb.configure().tool_timeout
    orchnb.configure(tool_timeout=1)
    try:
        run = agent("x")
    finally:
        orchnb.configure(tool_timeout=before)
    assert "timed out" in tool_spans(run)[0].output


def test_a_server_that_never_answers_the_handshake_fails_within_connect_timeout():
    with pytest.raises(ToolError, match=r"--hang-start.*did not finish starting within 1s"):
        demo("--hang-start", connect_timeout=1)


def test_a_server_that_exits_at_once_quotes_its_stderr():
    with pytest.raises(ToolError, match=r"(?s)failed to start.*exited with code 2.*boom"):
        mcp_tools(PY, ["-c", "import sys; print('boom', file=sys.stderr); sys.exit(2)"])


@pytest.mark.slow  # starts two servers
def test_a_schema_we_cannot_map_is_a_clear_error():
    with pytest.raises(SpecError, match=r"tool 'odd'.*external document"):
        demo("--bad-schema")
    assert [t.name for t in demo("--bad-schema", include=["add"])] == ["add"]


def test_yaml_agent_takes_named_tools_and_an_mcp_server():
    def shout(text: str) -> str:
        """Shout a text."""
        return text.upper()

    orchnb.SimModel("mcp_yaml", fn=Agent.sim_policy([("add", {"a": 1, "b": 2})],
                                                    "Got {observation}")).register()
    pipe = orchnb.from_yaml(f"""
pattern: agent
model: sim:mcp_yaml
tools:
  - shout
  - mcp: {{command: {PY!r}, args: [{SERVER!r}]}}
""", name="y", namespace={"shout": shout})
    assert list(pipe.tools) == ["shout", "lookup", "add"]
    assert pipe("x").output == "Got 3"
    with pytest.raises(SpecError, match=r"unknown mcp key.*comand"):
        orchnb.from_yaml("pattern: agent\nmodel: sim:echo\ntools:\n  - mcp: {comand: x}\n")
    with pytest.raises(SpecError, match=r"line 4.*no-such-mcp-server"):
        orchnb.from_yaml("pattern: agent\nmodel: sim:echo\ntools:\n"
                         "  - mcp: {command: no-such-mcp-server}\n")


@pytest.mark.slow
def test_streamable_http_server_by_url():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([PY, SERVER, "--http", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        tools = mcp_tools(url=f"http://127.0.0.1:{port}/mcp")
        agent = sim_agent("mcp_http", [("lookup", {"order_id": "C300"})], tools)
        assert agent("x").output == "Answer: delivered"
    finally:
        orchnb.tools.close_mcp_servers()
        proc.terminate()
        proc.wait(timeout=10)


@pytest.mark.slow
def test_mcp_tools_inside_a_real_kernel():
    # ipykernel replaces sys.stderr with an object a subprocess cannot inherit.
    from jupyter_client.manager import start_new_kernel

    km, kc = start_new_kernel(kernel_name="python3")
    try:
        code = f"""
import orchnb
tools = orchnb.mcp_tools({PY!r}, [{SERVER!r}])
orchnb.SimModel("k", fn=orchnb.Agent.sim_policy([("lookup", {{"order_id": "A100"}})],
                                                "Answer: {{observation}}")).register()
agent = orchnb.Agent("k", "sim:k", tools)
print([agent("x").output for _ in range(2)])
"""
        msg_id = kc.execute(code)
        out, errors = "", []
        while True:
            msg = kc.get_iopub_msg(timeout=90)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "stream":
                out += msg["content"]["text"]
            elif msg["msg_type"] == "error":
                errors.append(msg["content"])
            elif msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                break
        assert not errors, errors
        assert "['Answer: shipped on 2 May', 'Answer: shipped on 2 May']" in out
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def test_without_the_mcp_sdk_the_error_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "mcp", None)
    with pytest.raises(orchnb.OrchnbError, match=r"pip install 'orchnb\[mcp\]'"):
        mcp_tools("python", ["server.py"])


def test_an_mcp_tool_knows_its_yaml_entry():
    (add,) = demo(include=["add"])
    assert add.yaml_spec == {"mcp": {"command": PY, "args": [SERVER]}}
    with pytest.raises(SpecError, match="not both"):
        mcp_tools(PY, url="http://127.0.0.1:1/mcp")
    with pytest.raises(SpecError, match="list of strings"):
        mcp_tools(PY, "server.py")  # type: ignore[arg-type]


def test_to_yaml_writes_an_agents_mcp_server_and_reads_it_back():
    agent = sim_agent("mcp_yaml2", [("add", {"a": 1, "b": 1})], [demo(include=["add"])])
    text = agent.to_yaml()
    assert "mcp:" in text and "include:" in text
    again = orchnb.from_yaml(text, name="again")
    assert list(again.tools) == ["add"] and again("x").output == "Answer: 2"
