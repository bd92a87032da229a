"""The ladder rows of bench_routing.py: the synthetic middle model's grades, one seed's numbers
on a small table, and the section spliced into the results file without touching the rest."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from benchmarks._routing_ladder import BEGIN, END, NAMES, one_seed, splice, with_mid


def mmlu_like(n: int = 120) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(3)
    topic = np.arange(n) % 2  # topic 1: only gpt-4 is right
    df = pd.DataFrame({"prompt": [f"q{i} topic {t}" for i, t in enumerate(topic)],
                       "weak_correct": topic == 0, "strong_correct": True})
    x = np.c_[topic, 1 - topic, rng.normal(0, 0.1, (n, 6))]
    return df, x


def test_mid_is_right_where_mixtral_is_and_on_about_half_of_gpt4s_extra():
    df, _ = mmlu_like()
    mid = with_mid(df)["mid_correct"].to_numpy(bool)
    weak = df["weak_correct"].to_numpy(bool)
    assert mid[weak].all()
    assert 0.3 < mid[~weak].mean() < 0.7  # a seeded coin on gpt-4's extra questions
    assert with_mid(df)["mid_correct"].equals(with_mid(df)["mid_correct"])  # one fixed draw


def test_one_seed_reports_every_target_on_held_out_rows():
    df, x = mmlu_like()
    got = one_seed(with_mid(df), x, seed=0, bootstrap=50)
    assert 0 < got["apgr"] <= got["oracle"] and got["apgr_ci"][0] <= got["apgr_ci"][1]
    for point in got["targets"].values():
        assert sum(point["shares"][n] for n in NAMES) == pytest.approx(1.0)
        assert point["saving"] is not None and point["ci"]["pgr"] is not None


def test_the_section_replaces_its_markers_only():
    text = f"# Results\nkeep me\n{BEGIN}\nold\n{END}\nand me\n"
    new = splice(text, f"{BEGIN}\nnew\n{END}")
    assert new == f"# Results\nkeep me\n{BEGIN}\nnew\n{END}\nand me\n"
    assert splice("# Results\n", f"{BEGIN}\nx\n{END}").endswith(f"{BEGIN}\nx\n{END}\n")
