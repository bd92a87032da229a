"""Lay out a pipeline's ``describe()`` graph for the playground: nested boxes, top to bottom.

Each pattern is a box; its children sit in layers (longest path from the pattern's input),
side by side within a layer; a nested pattern is a box inside its parent's box. Edges that go
back up (agent loops, re-plans, a supervisor's next turn) bend round the right-hand side.
The result is plain JSON (positions in px) that ``playground.js`` draws as SVG and
:func:`to_svg` draws for static HTML.

>>> g = layout({"id": "c", "kind": "pattern", "pattern": "chain",
...             "children": [{"id": "a", "kind": "llm", "model": "sim:echo"}],
...             "edges": [("__in__", "a", ""), ("a", "__out__", "")]})
>>> [n["key"] for n in g["nodes"]]
['c', 'c/__in__', 'c/a', 'c/__out__']
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any

LEAF_W, LEAF_H = 168, 48
GAP_X, GAP_Y = 26, 40
PAD, TITLE = 14, 26
LOOP = 46  # room on the right of a box for back edges
TERM = 10  # the input / output dots inside a pattern box
MARGIN = 12


@dataclass
class _Box:
    key: str
    desc: dict[str, Any]
    w: float = LEAF_W
    h: float = LEAF_H
    x: float = 0.0
    y: float = 0.0
    children: list[_Box] = field(default_factory=list)
    layers: list[list[_Box]] = field(default_factory=list)
    back: bool = False

    @property
    def is_pattern(self) -> bool:
        return self.desc.get("kind") == "pattern" and "children" in self.desc


def _measure(desc: dict[str, Any], key: str) -> _Box:
    box = _Box(key, desc)
    if not box.is_pattern:
        return box
    kids = {}
    for child in desc.get("children", []):
        cid = str(child.get("id"))
        if cid not in kids:
            kids[cid] = _measure(child, f"{key}/{cid}")
    edges = [(str(a), str(b)) for a, b, *_ in desc.get("edges", [])]
    rank, back = _ranks(list(kids), edges)
    box.back = bool(back)
    top = max((rank[c] for c in kids), default=0)
    layers: list[list[_Box]] = [[] for _ in range(top + 1)]
    for cid, child in kids.items():
        layers[rank[cid]].append(child)
    box.children = list(kids.values())
    box.layers = [layer for layer in layers if layer]
    inner_w = max((sum(c.w for c in layer) + GAP_X * (len(layer) - 1) for layer in box.layers),
                  default=LEAF_W)
    inner_h = sum(max(c.h for c in layer) for layer in box.layers)
    inner_h += GAP_Y * (len(box.layers) + 1) + 2 * TERM
    box.w = inner_w + 2 * PAD + (LOOP if box.back else 0)
    box.h = TITLE + inner_h + PAD
    return box


def _ranks(nodes: list[str], edges: list[tuple[str, str]]) -> tuple[dict[str, int], set[Any]]:
    """Layer of each node (longest path from ``__in__`` over forward edges) and the back edges."""
    succ: dict[str, list[str]] = {}
    for a, b in edges:
        succ.setdefault(a, []).append(b)
    back: set[tuple[str, str]] = set()
    state: dict[str, int] = {}  # 1 on the DFS stack, 2 finished

    def visit(n: str) -> None:
        state[n] = 1
        for m in succ.get(n, []):
            if state.get(m) == 1:
                back.add((n, m))
            elif m not in state:
                visit(m)
        state[n] = 2

    for start in ["__in__", *nodes]:
        if start not in state:
            visit(start)
    rank = dict.fromkeys(nodes, 0)
    forward = [(a, b) for a, b in edges if (a, b) not in back and a in rank and b in rank]
    for _ in range(len(nodes)):  # relax: the graph is a DAG now, len(nodes) rounds suffice
        changed = False
        for a, b in forward:
            if rank[b] < rank[a] + 1:
                rank[b], changed = rank[a] + 1, True
        if not changed:
            break
    return rank, back


def _place(box: _Box, x: float, y: float, out: list[dict[str, Any]], depth: int) -> None:
    box.x, box.y = x, y
    out.append(_node(box, depth))
    if not box.is_pattern:
        return
    inner_w = box.w - 2 * PAD - (LOOP if box.back else 0)
    cx = x + PAD + inner_w / 2
    out.append(_terminal(f"{box.key}/__in__", "input", cx, y + TITLE + TERM / 2, depth + 1))
    cy = y + TITLE + TERM + GAP_Y
    for layer in box.layers:
        width = sum(c.w for c in layer) + GAP_X * (len(layer) - 1)
        lh = max(c.h for c in layer)
        lx = cx - width / 2
        for child in layer:
            _place(child, lx, cy + (lh - child.h) / 2, out, depth + 1)
            lx += child.w + GAP_X
        cy += lh + GAP_Y
    out.append(_terminal(f"{box.key}/__out__", "output", cx, cy + TERM / 2, depth + 1))


def _node(box: _Box, depth: int) -> dict[str, Any]:
    d = box.desc
    kind = str(d.get("kind", "node"))
    if box.is_pattern:
        sub = str(d.get("pattern", ""))
    elif kind == "tool":
        sub = "tool"
    else:
        sub = str(d.get("model") or d.get("function") or d.get("role") or kind)
    extra = {k: d[k] for k in ("role", "max_iterations", "concurrency", "chunk_tokens",
                               "max_replans", "max_turns", "default") if d.get(k) is not None}
    return {"key": box.key, "label": str(d.get("id")), "kind": kind, "sub": sub,
            "pattern": d.get("pattern"), "box": box.is_pattern, "depth": depth,
            "x": round(box.x, 1), "y": round(box.y, 1), "w": round(box.w, 1),
            "h": round(box.h, 1), "sim": sub.startswith("sim:"), **extra}


def _terminal(key: str, label: str, cx: float, cy: float, depth: int) -> dict[str, Any]:
    return {"key": key, "label": label, "kind": "terminal", "sub": "", "box": False,
            "depth": depth, "x": round(cx - TERM / 2, 1), "y": round(cy - TERM / 2, 1),
            "w": TERM, "h": TERM}


def _edges(box: _Box, pos: dict[str, dict[str, Any]], out: list[dict[str, Any]],
           leaves: list[dict[str, Any]]) -> None:
    if not box.is_pattern:
        return
    edges = [(str(a), str(b), str(lbl) if lbl else "") for a, b, lbl, *_ in
             (tuple(e) + ("",) * (3 - len(e)) for e in box.desc.get("edges", []))]
    _, back = _ranks([c.desc["id"] for c in box.children], [(a, b) for a, b, _ in edges])
    pairs = {(a, b) for a, b, _ in edges}
    lane = box.x + box.w - LOOP + 14
    lanes = 0
    for i, (a, b, label) in enumerate(edges):
        ka, kb = f"{box.key}/{a}", f"{box.key}/{b}"
        if ka not in pos or kb not in pos:
            continue
        na, nb = pos[ka], pos[kb]
        anchor = "start"
        if a == b:  # a self-loop (an agent's next iteration): an arc on its right
            x, y, h = na["x"] + na["w"], na["y"], na["h"]
            pts = [(x, y + h * 0.3), (x + 34, y - 8), (x + 34, y + h + 8), (x, y + h * 0.7)]
            kind = "loop"
            lx, ly = x + 30, y + h / 2 + 4
        elif (a, b) in back and (b, a) in pairs:  # the way back of a two-way pair: go up
            x1, y1 = na["x"] + na["w"] / 2 + PAIR, na["y"]
            x2, y2 = nb["x"] + nb["w"] / 2 + PAIR, nb["y"] + nb["h"]
            dy = max(12.0, (y1 - y2) / 2)
            pts = [(x1, y1), (x1, y1 - dy), (x2, y2 + dy), (x2, y2)]
            kind = "loop"
            lx = ly = None
        elif (a, b) in back:  # other ways back: round the right-hand lane of the box
            x1, y1 = na["x"] + na["w"], na["y"] + na["h"] / 2
            x2, y2 = nb["x"] + nb["w"], nb["y"] + nb["h"] / 2
            far = lane + (lanes % 3) * 8
            lanes += 1
            pts = [(x1, y1), (far, y1), (far, y2), (x2, y2)]
            kind = "loop"
            lx, ly = None, None
        else:
            off = -PAIR if (b, a) in back and a != b else 0.0
            x1, y1 = na["x"] + na["w"] / 2 + off, na["y"] + na["h"]
            x2, y2 = nb["x"] + nb["w"] / 2 + off, nb["y"]
            dy = max(12.0, (y2 - y1) / 2)
            pts = [(x1, y1), (x1, y1 + dy), (x2, y2 - dy), (x2, y2)]
            kind = "flow"
            anchor = "end" if off else "start"
            lx = ly = None
        if lx is None and label:
            lx, ly, anchor = _label_spot(pts, label, leaves, anchor, kind == "loop")
        (p0, p1, p2, p3) = pts
        path = (f"M{p0[0]:.1f},{p0[1]:.1f} C{p1[0]:.1f},{p1[1]:.1f} {p2[0]:.1f},{p2[1]:.1f} "
                f"{p3[0]:.1f},{p3[1]:.1f}")
        out.append({"id": f"{box.key}#{i}", "from": ka, "to": kb, "label": label,
                    "path": path, "lx": round(lx or 0.0, 1), "ly": round(ly or 0.0, 1),
                    "anchor": anchor, "kind": kind})
    for child in box.children:
        _edges(child, pos, out, leaves)


PAIR = 10  # two-way pairs (call / observe, hand off / result) are drawn side by side


def _bezier(pts: list[tuple[float, float]], t: float) -> tuple[float, float]:
    (x0, y0), (x1, y1), (x2, y2), (x3, y3) = pts
    u = 1 - t
    a, b, c, d = u ** 3, 3 * u * u * t, 3 * u * t * t, t ** 3
    return a * x0 + b * x1 + c * x2 + d * x3, a * y0 + b * y1 + c * y2 + d * y3


def _label_spot(pts: list[tuple[float, float]], label: str, leaves: list[dict[str, Any]],
                anchor: str, back: bool) -> tuple[float, float, str]:
    """Where along the edge its label overlaps no step box (middle first)."""
    width = 6.4 * len(label) + 4
    side = "start" if back else anchor
    for t in (0.5, 0.62, 0.38, 0.75, 0.25, 0.86):
        x, y = _bezier(pts, t)
        lx = x + 5 if side == "start" else x - 5
        left = lx if side == "start" else lx - width
        if not any(left < n["x"] + n["w"] and left + width > n["x"] and
                   y - 11 < n["y"] + n["h"] and y + 3 > n["y"] for n in leaves):
            return lx, y + 4, side
    x, y = _bezier(pts, 0.5)
    return (x + 5 if side == "start" else x - 5), y + 4, side


def layout(desc: dict[str, Any]) -> dict[str, Any]:
    """Positions of every node (``key`` = the path of names, ``/``-joined) and edge paths."""
    root = _measure(desc, str(desc.get("id")))
    nodes: list[dict[str, Any]] = []
    _place(root, MARGIN, MARGIN, nodes, 0)
    pos = {n["key"]: n for n in nodes}
    edges: list[dict[str, Any]] = []
    leaves = [n for n in nodes if not n["box"] and n["kind"] != "terminal"]
    _edges(root, pos, edges, leaves)
    return {"root": root.key, "width": round(root.w + 2 * MARGIN + 30, 1),
            "height": round(root.h + 2 * MARGIN, 1), "nodes": nodes, "edges": edges}


_COLOURS = {"ok": "#2e7d32", "error": "#c62828", "running": "#1565c0", "rejected": "#ef6c00",
            "cancelled": "#757575", "budget_exceeded": "#c62828", "max_iterations": "#c62828"}


def to_svg(graph: dict[str, Any], states: dict[str, str] | None = None) -> str:
    """A static SVG of a laid-out graph (for HTML exports where widgets cannot render)."""
    e = html.escape
    states = states or {}
    parts = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{graph['width']}' "
             f"height='{graph['height']}' font-family='sans-serif' font-size='12'>",
             "<defs><marker id='orch-arrow' viewBox='0 0 10 10' refX='9' refY='5' "
             "markerWidth='7' markerHeight='7' orient='auto-start-reverse'>"
             "<path d='M0,0 L10,5 L0,10 z' fill='#90a4ae'/></marker></defs>"]
    for n in graph["nodes"]:
        if not n["box"]:
            continue
        parts.append(f"<rect x='{n['x']}' y='{n['y']}' width='{n['w']}' height='{n['h']}' "
                     f"rx='8' fill='{'#f5f7fa' if n['depth'] % 2 == 0 else '#eef2f7'}' "
                     f"stroke='#b0bec5' stroke-dasharray='4 3'/>"
                     f"<text x='{n['x'] + 8}' y='{n['y'] + 17}' font-weight='bold'>"
                     f"{e(n['label'])} <tspan fill='#607d8b' font-weight='normal'>"
                     f"{e(str(n.get('pattern') or ''))}</tspan></text>")
    for ed in graph["edges"]:
        parts.append(f"<path d='{ed['path']}' fill='none' stroke='#90a4ae' stroke-width='1.4' "
                     f"marker-end='url(#orch-arrow)'/>")
        if ed["label"]:
            parts.append(f"<text x='{ed['lx']}' y='{ed['ly']}' fill='#546e7a' "
                         f"text-anchor='{ed.get('anchor', 'start')}' "
                         f"font-size='11'>{e(ed['label'])}</text>")
    for n in graph["nodes"]:
        if n["box"]:
            continue
        if n["kind"] == "terminal":
            parts.append(f"<circle cx='{n['x'] + n['w'] / 2}' cy='{n['y'] + n['h'] / 2}' "
                         f"r='{n['w'] / 2}' fill='#90a4ae'/>")
            continue
        colour = _COLOURS.get(states.get(n["key"], ""), "#b0bec5")
        parts.append(f"<rect x='{n['x']}' y='{n['y']}' width='{n['w']}' height='{n['h']}' "
                     f"rx='6' fill='#fff' stroke='{colour}' stroke-width='2'/>"
                     f"<text x='{n['x'] + 10}' y='{n['y'] + 19}' font-weight='bold'>"
                     f"{e(_short(n['label'], 22))}</text><text x='{n['x'] + 10}' "
                     f"y='{n['y'] + 36}' fill='#607d8b' font-size='11'>"
                     f"{e(_short(n['sub'], 26))}</text>")
    parts.append("</svg>")
    return "".join(parts)


def _short(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"
