"""``%orch eval`` through a real InteractiveShell, and the shipped ticket data."""

from __future__ import annotations

import pytest

from orchnb.evals import TICKET_LABELS, EvalReport, load_tickets


@pytest.fixture
def ip(ipython):
    return ipython


def test_eval_magic_runs_the_classifier_by_default(ip, small, triage):
    ip.user_ns.update(triage=triage, tickets=small.rename(columns={"text": "msg"}))
    report = ip.run_line_magic("orch", "eval triage tickets --text msg --label label "
                                       "--concurrency 4")
    assert isinstance(report, EvalReport) and report.n == len(small)
    assert not report.full_pipeline and report.calls == len(small)


def test_eval_magic_pipeline_flag_runs_the_routes(ip, small, triage):
    ip.user_ns.update(triage=triage, tickets=small)
    report = ip.run_line_magic("orch", "eval triage tickets --pipeline")
    assert report.full_pipeline and report.predictions.output.notna().all()


def test_eval_magic_reads_a_csv_path(ip, small, triage, tmp_path):
    path = tmp_path / "rows.csv"
    small.to_csv(path, index=False)
    ip.user_ns["triage"] = triage
    assert ip.run_line_magic("orch", f"eval triage {path}").n == len(small)


def test_shipped_tickets_are_a_few_hundred_varied_labelled_rows():
    df = load_tickets()
    assert 300 <= len(df) <= 400
    assert list(df.columns) == ["id", "text", "label", "ambiguous"]
    assert set(df.label) == set(TICKET_LABELS)
    assert df.label.value_counts().min() >= 40
    assert df.text.is_unique and df.id.is_unique
    assert 20 <= df.ambiguous.sum() <= 60
    assert df.text.str.len().between(5, 200).all()
