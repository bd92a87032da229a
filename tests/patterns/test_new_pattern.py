"""Adding a pattern touches its own module pair and one registry line (docs/architecture.md).

The toy seventh pattern here, ``Vote`` (ask every voter, answer with the most common reply), is
the worked example of the architecture page: its control flow, the tooling methods, its YAML
schema and builder. Preview, ``to_yaml``, YAML in, fork and preflight then work with no table
anywhere else; a class that leaves one tooling method out is refused loudly.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any, ClassVar

import pytest

from orchnb import Step
from orchnb.models import SimModel
from orchnb.patterns import Pipeline, from_yaml, register_builder
from orchnb.patterns._spec import PatternSpec, common_options
from orchnb.patterns._to_yaml import node_spec


# -- the pattern: control flow plus what tooling asks of it --------------------------------------
class Vote(Pipeline):
    """Every voter answers the input; the most common answer wins (ties: the first voter's)."""

    pattern = "vote"
    model_attrs: ClassVar[tuple[str, ...]] = ()  # its models live in its voters (children)
    fork_knobs: ClassVar[Mapping[str, int]] = {}
    internal_steps: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, name: str, voters: list[Any], **options: Any):
        super().__init__(name, **options)
        self.voters = voters

    async def _run(self, ctx: Any, input: Any, vars: Any) -> Any:
        answers = await ctx.gather([lambda v=v: v.invoke(ctx, input, vars) for v in self.voters])
        return Counter(answers).most_common(1)[0][0]

    def children(self) -> list[Any]:
        return list(self.voters)

    def walk_preview(self, w: Any, input: Any, vars: Any, at: Any) -> Any:
        here = w.within(at, self.name)
        for voter in self.voters:
            w.walk(voter, input, vars, w.under(here, "in parallel"))
        return w.pending(f"majority answer of {self.name}")

    def to_spec(self) -> dict[str, Any]:
        return {"voters": [node_spec(v) for v in self.voters]}


# -- its YAML: a schema and a builder ------------------------------------------------------------
class VoteSpec(PatternSpec):
    voters: list[Any]


def build_vote(spec: VoteSpec, ctx: Any, key: str, name: str) -> Vote:
    voters = [ctx.node(v, f"{key}.voters[{i}]" if key else f"voters[{i}]", f"voter{i + 1}")
              for i, v in enumerate(spec.voters)]
    return ctx._build(lambda: Vote(name, voters, **common_options(spec)), key)


@pytest.fixture(scope="module", autouse=True)
def registered():
    register_builder("vote", VoteSpec, build_vote, Vote)  # the one registry line
    SimModel("yes-voter", default="yes").register()
    SimModel("no-voter", default="no").register()


def make() -> Vote:
    return Vote("poll", [Step("a", "sim:yes-voter", "{{ input }}"),
                         Step("b", "sim:no-voter", "{{ input }}"),
                         Step("c", "sim:yes-voter", "again: {{ input }}")])


def test_a_seventh_pattern_runs_traced():
    run = make()("is it sunny?")
    assert run.output == "yes"
    df = run.trace.df
    assert sorted(df[df.kind == "model"].step) == ["a", "b", "c"]


def test_a_seventh_pattern_previews_writes_and_reads_its_yaml():
    pipe = make()
    preview = pipe.preview("is it sunny?")
    assert [c.step for c in preview.calls] == ["a", "b", "c"]
    text = pipe.to_yaml()
    assert "pattern: vote" in text and "voters:" in text
    again = from_yaml(text)
    assert isinstance(again, Vote) and again("x").output == "yes"
    assert again.to_yaml() == text


def test_a_seventh_pattern_forks_and_checks_its_models():
    pipe = make()
    assert {m.id for m in pipe.models()} == {"sim:yes-voter", "sim:no-voter"}
    run = pipe("q")
    fork = run.fork("b", model="sim:yes-voter")
    assert fork.resume().output == "yes"


def test_a_pattern_class_missing_a_tooling_method_fails_loudly():
    class Half(Pipeline):
        pattern = "half"

        async def _run(self, ctx: Any, input: Any, vars: Any) -> Any:
            return input

        def children(self) -> list[Any]:
            return []

    with pytest.raises(TypeError) as info:
        register_builder("half", VoteSpec, build_vote, Half)
    text = str(info.value)
    for name in ("walk_preview", "to_spec", "fork_knobs", "internal_steps", "model_attrs"):
        assert name in text
    assert "children" not in text.split("lacks", 1)[1].split(":")[0]  # it has that one


def test_every_shipped_pattern_defines_every_tooling_method():
    import importlib

    from orchnb.patterns._registry import BUILTIN, missing_tooling

    for module, cls in BUILTIN.values():
        pattern = getattr(importlib.import_module(f"orchnb.patterns.{module}"), cls)
        assert missing_tooling(pattern, Pipeline) == [], cls
