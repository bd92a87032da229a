"""Reports that travel (one self-contained HTML file) and gate (a regression check against a
baseline, and ``python -m orchnb eval ... --baseline`` exit codes)."""

from __future__ import annotations

import re

import pandas as pd
import pytest

import orchnb
from orchnb._cli import main
from orchnb.evals import ScoreReport

N = 200
DATA = pd.DataFrame({"text": [f"q{i}" for i in range(N)], "answer": [f"a{i}" for i in range(N)]})


def _bot(name, right):
    def answer(request):
        i = int(request.messages[-1].content.strip()[1:])
        return f"a{i}" if i in right else "no"

    orchnb.SimModel(name, fn=answer, priced_as="openai:gpt-4o-mini").register()
    return orchnb.Chain(name, [orchnb.Step("s", f"sim:{name}", "{{ input }}")])


def test_to_html_writes_one_self_contained_file_with_plotly_inline(tmp_path, small,
                                                                    make_router):
    report = orchnb.evaluate(_bot("gate-html", set(range(150))), DATA.head(20),
                             expected="answer", progress=False)
    page = report.to_html(tmp_path / "eval.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "Eval · gate-html" in page
    assert not re.search(r"<script[^>]+src=", page)  # nothing fetched: plotly.js is inline
    assert page.count("Plotly.newPlot") == len(report.charts())
    assert page.count("plotly.js v") <= 2  # the library once (its banner), not per chart
    router = orchnb.evaluate(make_router(), small, progress=False, n_boot=0)
    assert "Router eval" in router.to_html(tmp_path / "router.html").read_text()
    exp = orchnb.compare([_bot("gate-h1", set(range(10))), _bot("gate-h2", set(range(15)))],
                         DATA.head(20), expected="answer", progress=False, save=False)
    page = exp.to_html(tmp_path / "exp.html").read_text()
    assert "Decision:" in page and "Plotly.newPlot" in page


def test_check_flags_a_significant_drop_beyond_the_margin_only(tmp_path):
    base = orchnb.evaluate(_bot("gate-base", set(range(180))), DATA, expected="answer",
                           progress=False)
    base.save(tmp_path / "base.json")
    assert ScoreReport.load(tmp_path / "base.json").mean() == pytest.approx(0.9)
    worse = orchnb.evaluate(_bot("gate-worse", set(range(150))), DATA, expected="answer",
                            progress=False)
    check = worse.check(tmp_path / "base.json", margin=2)
    assert not check.passed and check.exit_code == 1 and check.regressions == ["exact"]
    assert check.sentence.startswith("REGRESSION on exact") and "95% CI [" in check.sentence
    same = orchnb.evaluate(_bot("gate-same", set(range(180))), DATA, expected="answer",
                           progress=False)
    assert same.check(base).passed and same.check(base).exit_code == 0
    slight = orchnb.evaluate(_bot("gate-slight", set(range(178))), DATA, expected="answer",
                             progress=False)
    assert slight.check(base, margin=2).passed  # 1 point: within the margin
    with pytest.raises(orchnb.SpecError, match="cannot read a saved eval report"):
        worse.check(tmp_path / "nope.json")


def test_cli_eval_exit_codes_for_the_regression_gate(tmp_path, capsys):
    DATA.to_csv(tmp_path / "data.csv", index=False)
    _bot("gate-cli-good", set(range(180)))
    _bot("gate-cli-bad", set(range(140)))
    for name in ("good", "bad"):
        (tmp_path / f"{name}.yaml").write_text(
            f"pattern: chain\nname: qa\nsteps:\n  - name: s\n    model: sim:gate-cli-{name}\n"
            f"    prompt: '{{{{ input }}}}'\n")
    base = tmp_path / "base.json"
    args = [str(tmp_path / "data.csv"), "--expected", "answer"]
    assert main(["eval", str(tmp_path / "good.yaml"), *args, "--save", str(base),
                 "--html", str(tmp_path / "r.html")]) == 0
    assert base.is_file() and (tmp_path / "r.html").is_file()
    assert main(["eval", str(tmp_path / "good.yaml"), *args, "--baseline", str(base)]) == 0
    assert main(["eval", str(tmp_path / "bad.yaml"), *args, "--baseline", str(base)]) == 1
    assert "REGRESSION on exact" in capsys.readouterr().err
    assert main(["eval", str(tmp_path / "bad.yaml"), *args, "--baseline", str(base),
                 "--margin", "50"]) == 0
    assert main(["eval", str(tmp_path / "bad.yaml"), str(tmp_path / "data.csv")]) == 2
    assert main(["eval", str(tmp_path / "bad.yaml"), *args, "--baseline",
                 str(tmp_path / "missing")]) == 2
