"""A run's notebook table stays readable however big the run, and never shows unpriced as $0."""

from __future__ import annotations

import re

from orchnb import Chain, FunctionStep, MapReduce, Step
from orchnb.engine._display import MAX_ITEMS, MAX_ROWS


def _rows(html: str) -> int:
    return html.count("<tr") - 1  # less the header


def test_a_big_map_reduce_shows_a_summary_first_items_and_how_many_more():
    def up(x: str) -> str:
        if x in ("x7", "x150"):
            raise ValueError(f"bad item {x}")
        return x.upper()

    pipe = MapReduce("big", map=FunctionStep("up", up), reduce=len, on_error="skip",
                     concurrency=32)
    run = pipe([f"x{i}" for i in range(300)])
    html = run._repr_html_()
    assert _rows(html) <= MAX_ROWS + MAX_ITEMS + 3
    assert "× 300 items (298 ok, 2 error)" in html
    assert f"… {300 - MAX_ITEMS} more items of <b>up</b>" in html and "run.trace.df" in html
    # The failed items are among the rows shown, whatever their position.
    assert "up <b>[7]</b>" in html and "up <b>[150]</b>" in html and "bad item x150" in html
    assert len(html) < 20_000


def test_a_long_chain_shows_its_first_rows_and_the_count_of_the_rest():
    pipe = Chain("long", [Step(f"s{i}", "sim:echo", "{{ input }}") for i in range(60)])
    html = pipe("hi")._repr_html_()
    assert _rows(html) == MAX_ROWS + 1
    hidden = int(re.search(r"… (\d+) more spans", html).group(1))
    assert hidden == 120 - MAX_ROWS  # a step span and a model span per step
    assert "60 model spans · 60 step spans" in html


def test_an_unpriced_run_says_unpriced_never_zero_dollars(fake_env):
    from orchnb.testing import FakeReply

    fake_env.responder = lambda request: FakeReply(text="ok", input_tokens=10, output_tokens=2)
    run = Chain("u", [Step("a", "openai:no-such-model-xyz", "{{ input }}")], cache=False)("x")
    assert run.unpriced_calls == 1
    assert "unpriced" in repr(run) and "$0" not in repr(run)
    html = run._repr_html_()
    assert "· unpriced" in html and "<i>unpriced</i>" in html and "$0" not in html
