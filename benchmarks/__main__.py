"""The benchmark runner: each scenario group in a fresh interpreter, one table, JSON + markdown.

    python -m benchmarks [--quick] [--out PATH] [--only GROUP,GROUP]
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from ._scenarios_common import machine

GROUPS: dict[str, tuple[str, str]] = {
    "startup": ("benchmarks._scenarios_startup", "startup"),
    "chain": ("benchmarks._scenarios_steps", "chain"),
    "router": ("benchmarks._scenarios_steps", "router"),
    "fanout": ("benchmarks._scenarios_fanout", "fanout"),
    "openai_fanout": ("benchmarks._scenarios_fanout", "openai_fanout"),
    "kernel": ("benchmarks._scenarios_kernel", "kernel"),
    "traces": ("benchmarks._scenarios_traces", "traces"),
    "router_eval": ("benchmarks._scenarios_eval", "router_eval"),
    "local_embedding_eval": ("benchmarks._scenarios_eval", "local_embedding_eval"),
    "callgrind": ("benchmarks.callgrind", "scenarios"),
}
DEFAULT_OUT = Path(__file__).parent / "results" / "latest.json"
# PYTHONDONTWRITEBYTECODE: with it, every fresh interpreter recompiles each stale module, and
# start-up measured 2x what a user's second import costs.
_CLEAN_ENV = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL",
              "ORCHNB_CACHE", "ORCHNB_PERSIST", "PYTHONDONTWRITEBYTECODE")


def expected(quick: bool) -> dict[str, list[str]]:
    """The scenarios each group produces (their names), for checks of a run's JSON."""
    sizes = [1000] if quick else [1000, 2000, 4000, 8000]
    return {
        "startup": ["startup"],
        "chain": ["chain_sync", "chain_async"],
        "router": ["router_sync", "router_async"],
        "fanout": [f"fanout_{n}" for n in sizes],
        "openai_fanout": ["openai_fanout"],
        "kernel": ["kernel_fanout"],
        "traces": ["traces_20000"] if quick else ["traces_100000", "traces_1000000"],
        "router_eval": ["router_eval"],
        "local_embedding_eval": ["local_embedding_eval"],
        "callgrind": ["callgrind"],
    }


# -- one group, in a child interpreter ------------------------------------------------------------
def _child(group: str, quick: bool, out: str) -> None:
    module, func = GROUPS[group]
    t = time.perf_counter()
    scenarios = getattr(importlib.import_module(module), func)(quick)
    took = time.perf_counter() - t
    for sc in scenarios:
        sc.seconds = sc.seconds or took / len(scenarios)
    Path(out).write_text(json.dumps([sc.to_dict() for sc in scenarios]))


def _run_group(group: str, quick: bool) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="orchnb-bench-") as tmp:
        env = {k: v for k, v in os.environ.items() if k not in _CLEAN_ENV}
        env["ORCHNB_HOME"] = str(Path(tmp) / "home")
        root = str(Path(__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
        out = Path(tmp) / "out.json"
        cmd = [sys.executable, "-m", "benchmarks", "--child", group, "--child-out", str(out)]
        proc = subprocess.run(cmd + (["--quick"] if quick else []), env=env, cwd=root,
                              capture_output=True, text=True, timeout=600 if quick else 3600,
                              check=False)
        if proc.returncode != 0 or not out.exists():
            error = (proc.stderr or proc.stdout)[-3000:]
            return [{"name": name, "title": name, "results": [], "error": error}
                    for name in expected(quick)[group]]
        return json.loads(out.read_text())


def _compile_package() -> None:
    """Byte-compile orchnb first, as a user's installed copy is: no child pays for compiling."""
    root = Path(__file__).resolve().parent.parent / "orchnb"
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(root)], check=False,
                   env={k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"})


# -- presenting -----------------------------------------------------------------------------------
def _num(x: float | None) -> str:
    if x is None:
        return "—"
    if x == 0:
        return "0"
    a = abs(x)
    if a >= 1000:
        return f"{x:,.0f}"
    if a >= 100:
        return f"{x:.0f}"
    if a >= 10:
        return f"{x:.1f}"
    if a >= 1:
        return f"{x:.2f}"
    return f"{x:.3g}"


def _ratio(r: dict[str, Any], sc: dict[str, Any]) -> str:
    if r["contender"] == sc.get("floor"):
        return "floor"
    return "—" if r.get("ratio") is None else f"{_num(r['ratio'])}×"


def _spread(r: dict[str, Any]) -> str:
    s = r.get("spread")
    return "—" if s is None else f"±{s * 100:.0f}%"


def _brief(r: dict[str, Any]) -> str:
    x = r.get("extra") or {}
    parts = []
    if "vs_langgraph" in x:
        parts.append(f"{_num(x['vs_langgraph'])}× LangGraph")
    if "cpu_ms" in x:
        parts.append(f"client CPU {_num(x['cpu_ms'])} ms")
    if "flush_ms" in x:
        parts.append(f"writer tail {_num(x['flush_ms'])} ms")
    if "index_us_per_span" in x:
        parts.append(f"+{_num(x['index_us_per_span'])} µs/span indexed later")
    if "peak_mib" in x:
        parts.append(f"peak +{_num(x['peak_mib'])} MiB, {x['bytes_per_span']:,} B/span")
    if "rows_per_s" in x:
        parts.append(f"{x['rows_per_s']:,} rows/s")
    if x.get("heavy_modules_loaded"):
        parts.append("loads " + ", ".join(x["heavy_modules_loaded"]))
    return "; ".join(parts)


def table(scenarios: list[dict[str, Any]]) -> str:
    """The plain-text table printed at the end of a run."""
    lines = [f"{'contender':44} {'median':>12} {'spread':>7} {'vs floor':>10}  notes"]
    for sc in scenarios:
        lines.append("")
        lines.append(f"{sc['name']}: {sc['title']}")
        if sc.get("error") or sc.get("skipped"):
            lines.append(f"  ({'FAILED' if sc.get('error') else 'skipped'}: "
                         f"{(sc.get('error') or sc.get('skipped') or '').strip()[-300:]})")
            continue
        for r in sc["results"]:
            value = f"{_num(r['value'])} {r['unit']}"
            lines.append(f"  {r['contender']:42} {value:>12} {_spread(r):>7} "
                         f"{_ratio(r, sc):>10}  {_brief(r)}")
        for t in sc.get("targets", []):
            mark = {True: "MET", False: "MISSED", None: "n/a"}[t["met"]]
            lines.append(f"  target: {t['target']} = {_num(t['value'])}{t['unit']} "
                         f"(≤ {_num(t['limit'])}{t['unit']}): {mark}")
    return "\n".join(lines)


def markdown(report: dict[str, Any]) -> str:
    """The README table: one row per contender, grouped by scenario, then the targets."""
    m = report["machine"]
    pk = m["packages"]
    head = [
        f"Benchmarks ({report['mode']} run, {report['started'][:10]}): {m['cpu']}, "
        f"{m['usable_cores']} cores, Python {m['python']}; langgraph {pk.get('langgraph')}, "
        f"langchain-core {pk.get('langchain-core')}, openai {pk.get('openai')}, "
        f"pandas {pk.get('pandas')}. Medians of repeated, interleaved runs; ± is half the "
        "interquartile range. Regenerate with `python -m benchmarks`.",
        "",
        "| scenario | contender | median | ± | vs floor | notes |",
        "|---|---|---:|---:|---:|---|",
    ]
    rows = []
    for sc in report["scenarios"]:
        title = sc["title"].replace("|", "\\|")
        if sc.get("error") or sc.get("skipped"):
            why = "failed" if sc.get("error") else f"skipped: {sc['skipped']}"
            rows.append(f"| {title} | — | — | — | — | {why} |")
            continue
        for i, r in enumerate(sc["results"]):
            rows.append(f"| {title if i == 0 else ''} | {r['contender']} | "
                        f"{_num(r['value'])} {r['unit']} | {_spread(r)} | {_ratio(r, sc)} | "
                        f"{_brief(r)} |")
    targets = ["", "| target | measured | limit | |", "|---|---:|---:|---|"]
    for t in report["targets"]:
        mark = {True: "met", False: "**missed**", None: "n/a"}[t["met"]]
        targets.append(f"| {t['target']} ({t['scenario']}) | {_num(t['value'])}{t['unit']} | "
                       f"≤ {_num(t['limit'])}{t['unit']} | {mark} |")
    notes = ["", "Notes:"] + [f"- {sc['name']}: {n}" for sc in report["scenarios"]
                              for n in sc.get("notes", [])]
    return "\n".join(head + rows + targets + notes) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a smoke run in under a minute")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help="JSON results (the markdown table goes next to it, as .md)")
    parser.add_argument("--only", default="", help=f"comma-separated groups: {', '.join(GROUPS)}")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--child-out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args.child, args.quick, args.child_out)
        return 0
    groups = [g.strip() for g in args.only.split(",") if g.strip()] or list(GROUPS)
    unknown = [g for g in groups if g not in GROUPS]
    if unknown:
        parser.error(f"unknown group(s) {', '.join(unknown)}; known: {', '.join(GROUPS)}")
    started = dt.datetime.now(dt.UTC)
    t0 = time.perf_counter()
    _compile_package()
    info = machine()
    scenarios: list[dict[str, Any]] = []
    for group in groups:
        t = time.perf_counter()
        print(f"[{group}] ...", end=" ", flush=True, file=sys.stderr)
        got = _run_group(group, args.quick)
        failed = any(s.get("error") for s in got)
        print(f"{'FAILED' if failed else 'done'} in {time.perf_counter() - t:.0f}s",
              file=sys.stderr, flush=True)
        scenarios += got
    info["loadavg_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    report = {
        "mode": "quick" if args.quick else "full",
        "started": started.isoformat(timespec="seconds"),
        "duration_s": round(time.perf_counter() - t0, 1),
        "machine": info,
        "groups": groups,
        "scenarios": scenarios,
        "targets": [{"scenario": sc["name"], **t} for sc in scenarios
                    for t in sc.get("targets", [])],
    }
    print(table(scenarios))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1, default=str) + "\n")
    args.out.with_suffix(".md").write_text(markdown(report))
    print(f"\nwrote {args.out} and {args.out.with_suffix('.md')} "
          f"({report['duration_s']:.0f}s)", file=sys.stderr)
    # Instruction counts do not move with the machine's load: a regression there fails the run.
    regressed = [t for t in report["targets"] if t["scenario"] == "callgrind" and t["met"] is False]
    for t in regressed:
        print(f"REGRESSION (callgrind): {t['target']}: {t['value']:.4f} > {t['limit']:.4f}",
              file=sys.stderr)
    return 1 if regressed or any(sc.get("error") for sc in scenarios) else 0


if __name__ == "__main__":
    sys.exit(main())
