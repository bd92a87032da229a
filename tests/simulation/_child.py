"""One of several processes writing one store at once (the multi-process simulation).

    python _child.py SCENARIOS.json READY_DIR

Runs each scenario (sim world), after every sibling is ready to start, and prints one JSON
line per run: its id, its spans as ``[span_id, status]`` and what broke of invariants (a)-(c)
and (e) here. The parent checks (d) against the shared store once all have exited.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path


def main() -> None:
    scenarios_file, ready_dir = sys.argv[1], Path(sys.argv[2])
    from _checks import check_all
    from _world import Scenario, play

    import orchnb

    orchnb.configure(progress=False)
    todo = [Scenario.from_json(s) for s in json.loads(Path(scenarios_file).read_text())]
    (ready_dir / f"ready-{os.getpid()}").touch()
    deadline = time.monotonic() + 60
    while not (ready_dir / "go").exists() and time.monotonic() < deadline:
        time.sleep(0.005)
    for s in todo:
        out, limit = play(s)
        broken = [b for b in check_all(s, out, limit, store=False)]
        run = out.run
        spans = [[sp.span_id, sp.status] for sp in run.trace.spans] if run is not None else []
        print(json.dumps({"run_id": getattr(run, "id", None), "done": bool(run and run.done),
                          "spans": spans, "broken": broken}), flush=True)


if __name__ == "__main__":
    main()
