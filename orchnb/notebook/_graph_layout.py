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
DUMMY_W = 14  # the width a layer-skipping edge takes in the layers it passes
PAIR = 10  # two-way pairs (call / observe, hand off / result) are drawn side by side


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
    bottom: float = 0.0
    """The bottom of this node's layer (edges out of a short node go straight down to it)."""
    dummies: dict[int, list[_Box]] = field(default_factory=dict)
    """Edge index → the pass-through points of an edge that skips layers (it goes round the
    nodes in between instead of through them)."""

    @property
    def is_pattern(self) -> bool:
        return self.desc.get("kind") == "pattern" and "children" in self.desc

    @property
    def is_dummy(self) -> bool:
        return self.desc.get("kind") == "dummy"


def _edge_list(desc: dict[str, Any]) -> list[tuple[str, str, str]]:
    out = []
    for e in desc.get("edges", []):
        e = tuple(e) + ("",) * (3 - len(e))
        out.append((str(e[0]), str(e[1]), str(e[2]) if e[2] else ""))
    return out


def _measure(desc: dict[str, Any], key: str) -> _Box:
    box = _Box(key, desc)
    if not box.is_pattern:
        return box
    kids: dict[str, _Box] = {}
    for child in desc.get("children", []):
        cid = str(child.get("id"))
        if cid not in kids:
            kids[cid] = _measure(child, f"{key}/{cid}")
    edges = _edge_list(desc)
    rank, back = _ranks(list(kids), [(a, b) for a, b, _ in edges])
    box.back = bool(back)
    top = max((rank[c] for c in kids), default=0)
    layers: list[list[_Box]] = [[] for _ in range(top + 1)]
    for cid, child in kids.items():
        layers[rank[cid]].append(child)
    where = {**rank, "__in__": -1, "__out__": top + 1}
    for i, (a, b, _) in enumerate(edges):
        if a == b or (a, b) in back or a not in where or b not in where:
            continue
        ra, rb = where[a], where[b]
        if rb - ra < 2:
            continue
        layer_a = layers[ra] if 0 <= ra <= top else []
        idx = next((j for j, c in enumerate(layer_a) if c.key.endswith("/" + a)), 0)
        right = not layer_a or (idx + 0.5) / len(layer_a) >= 0.5
        box.dummies[i] = []
        for r in range(ra + 1, rb):
            d = _Box(f"{key}/#{i}.{r}", {"kind": "dummy"}, w=DUMMY_W, h=0)
            if right:
                layers[r].append(d)
            else:
                layers[r].insert(0, d)
            box.dummies[i].append(d)
    box.children = list(kids.values())
    box.layers = [layer for layer in layers if layer]
    inner_w = max((sum(c.w for c in layer) + GAP_X * (len(layer) - 1) for layer in box.layers),
                  default=LEAF_W)
    inner_h = sum(_layer_h(layer) for layer in box.layers)
    inner_h += GAP_Y * (len(box.layers) + 1) + 2 * TERM
    box.w = inner_w + 2 * PAD + (LOOP if box.back else 0)
    box.h = TITLE + inner_h + PAD
    return box


def _layer_h(layer: list[_Box]) -> float:
    return max((c.h for c in layer if not c.is_dummy), default=0.0)


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
    if box.is_dummy:
        return
    out.append(_node(box, depth))
    if not box.is_pattern:
        return
    inner_w = box.w - 2 * PAD - (LOOP if box.back else 0)
    cx = x + PAD + inner_w / 2
    out.append(_terminal(f"{box.key}/__in__", "input", cx, y + TITLE + TERM / 2, depth + 1))
    cy = y + TITLE + TERM + GAP_Y
    for layer in box.layers:
        width = sum(c.w for c in layer) + GAP_X * (len(layer) - 1)
        lh = _layer_h(layer)
        lx = cx - width / 2
        for child in layer:  # top-aligned: edges into a layer never cross its shorter nodes
            if child.is_dummy:
                child.h = lh
            child.bottom = cy + lh
            _place(child, lx, cy, out, depth + 1)
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


Point = tuple[float, float]
Segment = tuple[Point, Point, Point, Point]


def _down(p: Point, q: Point) -> Segment:
    dy = max(12.0, (q[1] - p[1]) / 2)
    return (p, (p[0], p[1] + dy), (q[0], q[1] - dy), q)


def _edges(box: _Box, pos: dict[str, dict[str, Any]], out: list[dict[str, Any]],
           obstacles: list[tuple[float, float, float, float]]) -> None:
    if not box.is_pattern:
        return
    edges = _edge_list(box.desc)
    _, back = _ranks([c.desc["id"] for c in box.children], [(a, b) for a, b, _ in edges])
    pairs = {(a, b) for a, b, _ in edges}
    lane = box.x + box.w - LOOP + 14
    lanes = 0
    for i, (a, b, label) in enumerate(edges):
        ka, kb = f"{box.key}/{a}", f"{box.key}/{b}"
        if ka not in pos or kb not in pos:
            continue
        na, nb = pos[ka], pos[kb]
        ts: tuple[float, ...] = (0.5, 0.62, 0.38, 0.75, 0.25, 0.86)
        anchor = "start"
        lxy: Point | None = None
        if a == b:  # a self-loop (an agent's next iteration): an arc on its right
            x, y, h = na["x"] + na["w"], na["y"], na["h"]
            segs = [((x, y + h * 0.3), (x + 34, y - 8), (x + 34, y + h + 8), (x, y + h * 0.7))]
            kind, lxy = "loop", (x + 30, y + h / 2 + 4)
        elif (a, b) in back and (b, a) in pairs:  # the way back of a two-way pair: go up
            p = (na["x"] + na["w"] / 2 + PAIR, na["y"])
            q = (nb["x"] + nb["w"] / 2 + PAIR, nb["y"] + nb["h"])
            dy = max(12.0, (p[1] - q[1]) / 2)
            segs = [(p, (p[0], p[1] - dy), (q[0], q[1] + dy), q)]
            kind, ts = "loop", (0.25, 0.38, 0.15, 0.5)
        elif (a, b) in back:  # other ways back: round the right-hand lane of the box
            p = (na["x"] + na["w"], na["y"] + na["h"] / 2)
            q = (nb["x"] + nb["w"], nb["y"] + nb["h"] / 2)
            far = lane + (lanes % 3) * 8
            lanes += 1
            segs = [(p, (far, p[1]), (far, q[1]), q)]
            kind = "loop"
        else:
            off = -PAIR if (b, a) in back else 0.0
            segs = _flow_segments(box, i, ka, na, nb, off)
            kind = "flow"
            if off:
                anchor, ts = "end", (0.72, 0.6, 0.85, 0.5)
        if lxy is None and label:
            lxy, anchor = _label_spot(segs, label, obstacles, anchor, ts)
        d = f"M{segs[0][0][0]:.1f},{segs[0][0][1]:.1f}" + "".join(
            f" C{s[1][0]:.1f},{s[1][1]:.1f} {s[2][0]:.1f},{s[2][1]:.1f} {s[3][0]:.1f},"
            f"{s[3][1]:.1f}" for s in segs)
        lx, ly = lxy or (0.0, 0.0)
        out.append({"id": f"{box.key}#{i}", "from": ka, "to": kb, "label": label, "path": d,
                    "lx": round(lx, 1), "ly": round(ly, 1), "anchor": anchor, "kind": kind})
    for child in box.children:
        _edges(child, pos, out, obstacles)


def _flow_segments(box: _Box, i: int, ka: str, na: dict[str, Any], nb: dict[str, Any],
                   off: float) -> list[Segment]:
    """A forward edge: down from the source, through its dummy nodes, into the target."""
    cur = (na["x"] + na["w"] / 2 + off, na["y"] + na["h"])
    segs: list[Segment] = []
    src = next((c for c in box.children if c.key == ka), None)
    if src is not None and src.bottom > cur[1] + 1:  # a short node in a tall layer
        low = (cur[0], src.bottom)
        segs.append((cur, cur, low, low))
        cur = low
    for dm in box.dummies.get(i, []):
        top, bottom = (dm.x + dm.w / 2, dm.y), (dm.x + dm.w / 2, dm.y + dm.h)
        segs += [_down(cur, top), (top, top, bottom, bottom)]
        cur = bottom
    segs.append(_down(cur, (nb["x"] + nb["w"] / 2 + off, nb["y"])))
    return segs


def _bezier(seg: Segment, t: float) -> Point:
    (x0, y0), (x1, y1), (x2, y2), (x3, y3) = seg
    u = 1 - t
    a, b, c, d = u ** 3, 3 * u * u * t, 3 * u * t * t, t ** 3
    return a * x0 + b * x1 + c * x2 + d * x3, a * y0 + b * y1 + c * y2 + d * y3


def _label_spot(segs: list[Segment], label: str,
                obstacles: list[tuple[float, float, float, float]], anchor: str,
                ts: tuple[float, ...]) -> tuple[Point, str]:
    """Where along the edge its label overlaps no node or box title (preferred spots first)."""
    width = 6.4 * len(label) + 4
    order = [segs[0], *segs[1:]] if len(segs) < 3 else [segs[0], segs[-1], *segs[1:-1]]
    for seg in order:
        if seg[0] == seg[1]:  # a straight pass-through: no room for a label
            continue
        for t in ts:
            x, y = _bezier(seg, t)
            lx = x + 5 if anchor == "start" else x - 5
            left = lx if anchor == "start" else lx - width
            if not any(left < ox + ow and left + width > ox and y - 11 < oy + oh and y + 3 > oy
                       for ox, oy, ow, oh in obstacles):
                return (lx, y + 4), anchor
    x, y = _bezier(segs[0], ts[0])
    return ((x + 5 if anchor == "start" else x - 5), y + 4), anchor


def layout(desc: dict[str, Any]) -> dict[str, Any]:
    """Positions of every node (``key`` = the path of names, ``/``-joined) and edge paths."""
    root = _measure(desc, str(desc.get("id")))
    nodes: list[dict[str, Any]] = []
    _place(root, MARGIN, MARGIN, nodes, 0)
    pos = {n["key"]: n for n in nodes}
    edges: list[dict[str, Any]] = []
    obstacles = [(n["x"], n["y"], n["w"], TITLE if n["box"] else n["h"]) for n in nodes
                 if n["kind"] != "terminal"]
    _edges(root, pos, edges, obstacles)
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
