"""Views of a :class:`~nord.neural_nets.NeuralDescriptor`: networkx, DOT, matplotlib.

* :func:`to_networkx` — a ``networkx.DiGraph`` for analysis;
* :func:`to_dot` — Graphviz DOT text (render it with ``dot -Tpng``);
* :func:`plot_descriptor` — a layered drawing made with matplotlib alone
  (no Graphviz, pydot or pygraphviz needed).

All three read only ``layers``, ``connections``, ``first_layer`` and
``last_layer``; connections that name unknown layers are left out, and
inactive layers (on no input → output path, pruned at compile time) are
marked. None of them modifies the descriptor.
"""

from __future__ import annotations

import copy as _copy
from collections import deque
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple

from nord.neural_nets.graph import (
    active_nodes,
    find_cycles,
    predecessors,
    successors,
    topological_order,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["to_networkx", "to_dot", "plot_descriptor", "layer_label", "params_summary"]


# ---------------------------------------------------------------------- helpers
def layer_label(layer: Any) -> str:
    """The display name of a layer type: the op string or the class name."""
    if isinstance(layer, str):
        return layer
    return getattr(layer, "__name__", type(layer).__name__)


# Short names for common parameters, shown first and in this order.
_ABBREVIATIONS = (
    ("kernel_size", "k"),
    ("out_channels", "c"),
    ("out_features", "out"),
    ("num_features", "n"),
    ("stride", "s"),
    ("padding", "p"),
    ("dilation", "d"),
    ("groups", "g"),
    ("in_channels", "in"),
    ("in_features", "in"),
)
_MAX_ITEMS = 4
_MAX_VALUE = 12
_MAX_SUMMARY = 40


def _short_value(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        text = str(value)
    elif isinstance(value, float):
        text = f"{value:g}"
    elif isinstance(value, (tuple, list)) and value and all(
            isinstance(v, int) and not isinstance(v, bool) for v in value):
        text = "x".join(str(v) for v in value)
    elif isinstance(value, str):
        text = value
    elif isinstance(value, type):
        text = value.__name__
    else:
        text = repr(value)
    text = " ".join(text.split())  # no newlines or runs of spaces
    return text if len(text) <= _MAX_VALUE else text[:_MAX_VALUE - 1] + "…"


def params_summary(params: Dict[str, Any]) -> str:
    """A compact one-line summary, e.g. ``k=3 c=10`` (at most a few items)."""
    if not params:
        return ""
    keys: List[Tuple[str, str]] = []
    known = set()
    for key, short in _ABBREVIATIONS:
        if key in params:
            keys.append((key, short))
            known.add(key)
    keys += [(key, str(key)) for key in params if key not in known]
    items = [f"{short}={_short_value(params[key])}" for key, short in keys]
    shown: List[str] = []
    for item in items[:_MAX_ITEMS]:
        if shown and len(" ".join(shown + [item])) > _MAX_SUMMARY:
            break
        shown.append(item)
    text = " ".join(shown)
    if len(text) > _MAX_SUMMARY:
        text = text[:_MAX_SUMMARY - 1] + "…"
    if len(shown) < len(items):
        text += " …"
    return text


def _role(descriptor, name: str) -> str:
    # A single-layer descriptor's only layer is both; it is reported as input.
    if name == descriptor.first_layer:
        return "input"
    if name == descriptor.last_layer:
        return "output"
    return "hidden"


def _edges(descriptor) -> List[Tuple[str, str]]:
    """Connections between existing layers, in insertion order, without repeats."""
    seen = set()
    edges = []
    known = descriptor.layers
    for src, dsts in descriptor.connections.items():
        if src not in known:
            continue
        for dst in dsts:
            if dst in known and (src, dst) not in seen:
                seen.add((src, dst))
                edges.append((src, dst))
    return edges


def _copy_params(params: Dict[str, Any]) -> Dict[str, Any]:
    try:
        return _copy.deepcopy(params)
    except Exception:  # un-copyable values (e.g. a lock): share them
        return dict(params)


# ---------------------------------------------------------------------- networkx
def to_networkx(descriptor):
    """A ``networkx.DiGraph`` with one node per layer, in insertion order.

    Node attributes: ``layer`` (the type or op string), ``label`` (its display
    name), ``params`` (a copy), ``role`` (``'input'``, ``'output'`` or
    ``'hidden'``) and ``active``. Graph attributes: ``first_layer`` and
    ``last_layer``. Connections naming unknown layers are skipped.
    """
    import networkx as nx

    active = set(active_nodes(descriptor))
    graph = nx.DiGraph(first_layer=descriptor.first_layer,
                       last_layer=descriptor.last_layer)
    for name, spec in descriptor.layers.items():
        graph.add_node(name, layer=spec.layer, label=layer_label(spec.layer),
                       params=_copy_params(spec.params),
                       role=_role(descriptor, name), active=name in active)
    graph.add_edges_from(_edges(descriptor))
    return graph


# ---------------------------------------------------------------------- DOT
def _dot_quote(text: str) -> str:
    """A DOT double-quoted string holding ``text`` (also a safe escString)."""
    text = (str(text).replace("\\", "\\\\").replace('"', '\\"')
            .replace("\r", "\\r").replace("\n", "\\n"))
    return f'"{text}"'


_DOT_SHAPES = {"input": "invhouse", "output": "house", "hidden": "box"}
_DOT_FILL = {"input": "#d9f2d9", "output": "#fde2c8", "hidden": "#e3ecfa"}


def to_dot(descriptor, name: str = "descriptor") -> str:
    """Graphviz DOT text of the descriptor, deterministic for a given descriptor.

    Each node is labelled ``name``, layer type and a short params summary; the
    input is an inverted house, the output a house; inactive layers and their
    connections are dashed and grey. Node ids are the layer names, quoted and
    escaped, so any string is safe.
    """
    active = set(active_nodes(descriptor))
    lines = [
        f"digraph {_dot_quote(name)} {{",
        "  rankdir=TB;",
        '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=10];',
        '  edge [color="#444444", arrowsize=0.7];',
    ]
    for layer_name, spec in descriptor.layers.items():
        role = _role(descriptor, layer_name)
        parts = [str(layer_name), layer_label(spec.layer)]
        summary = params_summary(spec.params)
        if summary:
            parts.append(summary)
        label = "\\n".join(_dot_quote(p)[1:-1] for p in parts)
        attrs = [f'label="{label}"', f"shape={_DOT_SHAPES[role]}"]
        if role != "hidden":
            attrs.append("penwidth=2")
        if layer_name in active:
            attrs.append(f'fillcolor="{_DOT_FILL[role]}"')
            if role != "hidden":
                attrs.append('style="filled"')
        else:
            attrs += ['style="dashed,filled"', 'fillcolor="#f4f4f4"',
                      'color="grey60"', 'fontcolor="grey45"']
        lines.append(f"  {_dot_quote(layer_name)} [{', '.join(attrs)}];")
    for src, dst in _edges(descriptor):
        style = "" if src in active and dst in active else \
            ' [style=dashed, color="grey60"]'
        lines.append(f"  {_dot_quote(src)} -> {_dot_quote(dst)}{style};")
    lines.append("}")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------- layout
def _depths(descriptor) -> Dict[str, int]:
    """Row of each layer: longest-path depth, or BFS depth if there is a cycle."""
    names = list(descriptor.layers)
    if not find_cycles(descriptor):
        preds = predecessors(descriptor)
        depth: Dict[str, int] = {}
        for node in topological_order(descriptor):
            depth[node] = max((depth[p] + 1 for p in preds[node]), default=0)
        return depth
    succ = successors(descriptor)
    depth = {}
    starts = ([descriptor.first_layer] if descriptor.first_layer in descriptor.layers
              else []) + names
    for start in starts:
        if start in depth:
            continue
        depth[start] = 0
        queue = deque([start])
        while queue:
            node = queue.popleft()
            for nxt in succ[node]:
                if nxt not in depth:
                    depth[nxt] = depth[node] + 1
                    queue.append(nxt)
    return depth


def _order_rows(descriptor, depth: Dict[str, int]) -> List[List[str]]:
    """Nodes per row, ordered by a few barycenter sweeps to limit crossings."""
    n_rows = max(depth.values()) + 1
    rows: List[List[str]] = [[] for _ in range(n_rows)]
    for name in descriptor.layers:  # insertion order as the starting point
        rows[depth[name]].append(name)
    preds, succ = predecessors(descriptor), successors(descriptor)

    def x_of(row: List[str]) -> Dict[str, float]:
        return {n: i - (len(row) - 1) / 2 for i, n in enumerate(row)}

    for sweep in range(4):
        downward = sweep % 2 == 0
        order = range(1, n_rows) if downward else range(n_rows - 2, -1, -1)
        x = {}
        for row in rows:
            x.update(x_of(row))
        for r in order:
            row = rows[r]
            keys = {}
            for i, node in enumerate(row):
                nbrs = ([p for p in preds[node] if depth[p] < r] if downward
                        else [s for s in succ[node] if depth[s] > r])
                keys[node] = (sum(x[n] for n in nbrs) / len(nbrs) if nbrs else x[node], i)
            row.sort(key=keys.__getitem__)
            x.update(x_of(row))
    return rows


# ---------------------------------------------------------------------- matplotlib
_FONT_PT = 9.0
_CHAR_IN = 0.6 * _FONT_PT / 72      # monospace advance width
_LINE_IN = 1.25 * _FONT_PT / 72
_MAX_CHARS = 26
_FILL = {"input": "#c9ebc9", "output": "#fbd3ac", "hidden": "#dbe6f8"}
_EDGE_COLOR = {"input": "#2e7d32", "output": "#c4661f", "hidden": "#3b5b92"}


def _clip(text: str) -> str:
    text = " ".join(str(text).split()) or " "
    return text if len(text) <= _MAX_CHARS else text[:_MAX_CHARS - 1] + "…"


def plot_descriptor(descriptor, path: Optional[str] = None, ax=None) -> "Figure":
    """Draw the descriptor with matplotlib and return the Figure.

    Layers are boxes labelled with name, type and params, placed top to bottom
    in rows by longest-path depth from the input (breadth-first depth when the
    graph has a cycle); inactive layers are faded and dashed. Draws on ``ax``
    when given, otherwise on a new :class:`matplotlib.figure.Figure` sized to
    the graph, which stays outside pyplot's global registry (nothing to close;
    a caller's figure is left as it is). When ``path`` is given the figure is
    saved there as a PNG. Never calls ``plt.show()`` or ``matplotlib.use``.
    """
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    names = list(descriptor.layers)
    active = set(active_nodes(descriptor))
    labels = {}
    for name, spec in descriptor.layers.items():
        lines = [_clip(name), _clip(layer_label(spec.layer))]
        summary = params_summary(spec.params)
        if summary:
            lines.append(_clip(summary))
        labels[name] = lines

    # Geometry in inches: every box has the same size, rows are evenly spaced.
    max_chars = max((len(text) for ls in labels.values() for text in ls), default=8)
    max_lines = max((len(ls) for ls in labels.values()), default=1)
    box_w = max_chars * _CHAR_IN + 0.3
    box_h = max_lines * _LINE_IN + 0.18
    slot_w = box_w + 0.4
    row_h = box_h + 0.5
    rows = _order_rows(descriptor, _depths(descriptor)) if names else []
    width = max((len(r) for r in rows), default=1) * slot_w + 0.3
    height = max(len(rows), 1) * row_h + 0.1
    pos = {}
    for r, row in enumerate(rows):
        for i, node in enumerate(row):
            pos[node] = ((i - (len(row) - 1) / 2) * slot_w, -r * row_h)

    created = ax is None
    if created:
        from matplotlib.figure import Figure
        fig = Figure(figsize=(width, height))
        ax = fig.add_axes((0, 0, 1, 1))
        scale = 1.0
    else:
        fig = ax.figure
        bbox = ax.get_position()
        fw, fh = fig.get_size_inches()
        scale = max(min(1.0, bbox.width * fw / width, bbox.height * fh / height), 0.3)

    ax.set_xlim(-width / 2, width / 2)
    ax.set_ylim(-height + row_h / 2 + 0.05, row_h / 2 + 0.05)
    ax.set_aspect("equal", adjustable="datalim" if not created else "box")
    ax.set_axis_off()

    if not names:
        ax.text(0, 0, "(empty descriptor)", ha="center", va="center",
                fontsize=_FONT_PT * scale, color="grey", parse_math=False)

    patches = {}
    for name in names:
        x, y = pos[name]
        role = _role(descriptor, name)
        on = name in active
        box = FancyBboxPatch(
            (x - box_w / 2, y - box_h / 2), box_w, box_h,
            boxstyle="round,pad=0,rounding_size=0.08" if role == "hidden"
            else "round,pad=0,rounding_size=0.22",
            facecolor=_FILL[role] if on else "#f2f2f2",
            edgecolor=_EDGE_COLOR[role] if on else "#9e9e9e",
            linewidth=(2.0 if role != "hidden" else 1.0) * scale,
            linestyle="-" if on else "--", alpha=1.0 if on else 0.6, zorder=2)
        ax.add_patch(box)
        patches[name] = box
        name_line, *rest = labels[name]
        text_color = "#1a1a1a" if on else "#8a8a8a"
        ax.text(x, y + (len(rest)) * _LINE_IN / 2, name_line, ha="center",
                va="center", family="monospace", fontweight="bold",
                fontsize=_FONT_PT * scale, color=text_color, zorder=3, parse_math=False)
        for k, line in enumerate(rest):
            ax.text(x, y + (len(rest) - 2 * (k + 1)) * _LINE_IN / 2, line,
                    ha="center", va="center", family="monospace",
                    fontsize=_FONT_PT * scale, color=text_color, zorder=3,
                    parse_math=False)

    depth_of = {n: round(-pos[n][1] / row_h) for n in names}
    for src, dst in _edges(descriptor):
        on = src in active and dst in active
        style = dict(arrowstyle="-|>", mutation_scale=10 * scale,
                     color="#404040" if on else "#a0a0a0",
                     linewidth=1.1 * scale, linestyle="-" if on else "--",
                     alpha=1.0 if on else 0.7, zorder=1)
        (x0, y0), (x1, y1) = pos[src], pos[dst]
        if src == dst:  # self-loop on the right side of the box
            arrow = FancyArrowPatch((x0 + box_w / 2, y0 + box_h / 4),
                                    (x0 + box_w / 2, y0 - box_h / 4),
                                    connectionstyle="arc3,rad=-1.2", **style)
        else:
            span = depth_of[dst] - depth_of[src]
            rad = 0.0 if span == 1 else (0.35 if span <= 0 else 0.2)
            if rad and x1 < x0:
                rad = -rad
            arrow = FancyArrowPatch((x0, y0), (x1, y1), patchA=patches[src],
                                    patchB=patches[dst], shrinkA=1, shrinkB=1,
                                    connectionstyle=f"arc3,rad={rad}", **style)
        ax.add_patch(arrow)

    if path is not None:
        fig.savefig(path, format="png", dpi=120, bbox_inches="tight",
                    facecolor="white")
    return fig
