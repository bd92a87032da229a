"""Start-up: ``import orchnb`` and ``%load_ext orchnb`` in fresh interpreters.

Each sample is one new interpreter timing the import (or the magic) from inside, so Python's own
start-up is not counted. For comparison, the same for the peers' entry points and for pandas.
The child also reports which heavy modules the import pulled in.
"""

from __future__ import annotations

import json

from ._scenarios_common import Result, Scenario, python_child

HEAVY = ("openai", "anthropic", "pandas", "plotly", "numpy", "httpx", "IPython", "anywidget",
         "langgraph", "langchain_core")

_IMPORT = """
import sys, time, json
t = time.perf_counter()
import {module}
dt = time.perf_counter() - t
print(json.dumps({{"s": dt, "loaded": [m for m in {heavy!r} if m in sys.modules]}}))
"""

_LOAD_EXT = """
import sys, time, json
from IPython.core.interactiveshell import InteractiveShell
shell = InteractiveShell.instance()
before = set(sys.modules)
t = time.perf_counter()
shell.run_line_magic("load_ext", "orchnb")
dt = time.perf_counter() - t
print(json.dumps({{"s": dt, "loaded": [m for m in {heavy!r}
                                       if m in sys.modules and m not in before]}}))
"""

CONTENDERS = {
    "import orchnb": _IMPORT.format(module="orchnb", heavy=HEAVY),
    "%load_ext orchnb (IPython already up)": _LOAD_EXT.format(heavy=HEAVY),
    "import langgraph.graph": _IMPORT.format(module="langgraph.graph", heavy=HEAVY),
    "import langchain_core.runnables": _IMPORT.format(module="langchain_core.runnables",
                                                      heavy=HEAVY),
    "import openai": _IMPORT.format(module="openai", heavy=HEAVY),
    "import pandas": _IMPORT.format(module="pandas", heavy=HEAVY),
}


def startup(quick: bool) -> list[Scenario]:
    """Import and extension-load times, median of fresh interpreters in rotating order."""
    reps = 3 if quick else 11
    names = list(CONTENDERS)
    samples: dict[str, list[float]] = {n: [] for n in names}
    loaded: dict[str, list[str]] = {}
    for rep in range(reps):
        k = rep % len(names)
        for name in names[k:] + names[:k]:
            d = json.loads(python_child(CONTENDERS[name]).strip().splitlines()[-1])
            samples[name].append(d["s"] * 1000)
            loaded[name] = d["loaded"]
    sc = Scenario("startup", "start-up in a fresh interpreter: ms (Python's own start-up "
                  "excluded)")
    for name in names:
        extra = {"heavy_modules_loaded": loaded[name]}
        sc.add(Result.of(name, samples[name], "ms", **extra))
    for name in ("import orchnb", "%load_ext orchnb (IPython already up)"):
        heavy = [m for m in ("openai", "anthropic", "pandas", "plotly") if m in loaded[name]]
        sc.notes.append(f"{name}: " + (f"imports {', '.join(heavy)}" if heavy else
                                       "openai, anthropic, pandas and plotly not imported"))
    mine = sc.get("import orchnb")
    if mine is not None:
        sc.target("import orchnb", mine.value, 150.0, "ms")
    return [sc.finish()]
