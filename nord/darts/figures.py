"""Figure 8.5: a genotype's two cells drawn as graphs."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Dict, Tuple

from nord.analysis.figures import new_figure, save_figure
from nord.darts.genotype import Genotype
from nord.errors import GenotypeError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["draw_genotype"]


def _positions(genotype: Genotype) -> Dict[str, Tuple[float, float]]:
    """Inputs on the left, the intermediate nodes in a column, the output right."""
    steps = genotype.steps
    pos = {"c_{k-2}": (0.0, 0.75), "c_{k-1}": (0.0, 0.25), "c_{k}": (4.4, 0.5)}
    for i in range(steps):  # a diagonal, so that no edge runs through another node
        pos[str(i)] = (1.1 + 2.2 * i / max(1, steps - 1), 1.0 - (i + 0.5) / steps)
    return pos


def draw_genotype(genotype: Genotype, path=None, title: str = "") -> "Figure":
    """The normal and the reduction cell side by side: each edge carries its
    operation, each intermediate node sums its two edges, ``c_{k}`` concatenates."""
    if not isinstance(genotype, Genotype):
        raise GenotypeError(f"draw_genotype needs a Genotype, got {type(genotype).__name__}")
    fig = new_figure(12, 4.5)
    pos = _positions(genotype)
    names = {0: "c_{k-2}", 1: "c_{k-1}"}
    for axes, reduction in zip(fig.subplots(1, 2), (False, True)):
        axes.set_xlim(-0.4, 4.8)
        axes.set_ylim(-0.05, 1.05)
        for k, (op, j) in enumerate(genotype.cell(reduction)):
            source, target = names.get(j, str(j - 2)), str(k // 2)
            (x0, y0), (x1, y1) = pos[source], pos[target]
            # nodes lie on a diagonal: an edge between two of them bends around
            # those in between (an arc, labelled at its middle); edges from the
            # inputs are straight, labelled nearer the target (the two inputs
            # fan out to many nodes, each node takes only two edges)
            bend = -0.45 if j >= 2 else 0.0
            axes.annotate("", xy=(x1, y1), xytext=(x0, y0),
                          arrowprops={"arrowstyle": "->", "color": "0.35",
                                      "shrinkA": 14, "shrinkB": 14,
                                      "connectionstyle": f"arc3,rad={bend}"})
            start = axes.transData.transform((x0, y0))
            dx, dy = axes.transData.transform((x1, y1)) - start
            t = 0.5 if j >= 2 else 0.58 + 0.1 * (k % 2)
            x, y = axes.transData.inverted().transform(
                (start[0] + t * dx + 0.5 * bend * dy, start[1] + t * dy - 0.5 * bend * dx))
            angle = math.degrees(math.atan2(dy, dx))
            axes.text(x, y, op, fontsize=7,
                      ha="center", va="center", color="tab:blue", rotation=angle,
                      rotation_mode="anchor",
                      bbox={"boxstyle": "round,pad=0.1", "fc": "white", "ec": "none"})
        for j in genotype.concat(reduction):
            (x0, y0), (x1, y1) = pos[names.get(j, str(j - 2))], pos["c_{k}"]
            axes.annotate("", xy=(x1, y1), xytext=(x0, y0),
                          arrowprops={"arrowstyle": "->", "color": "0.7", "shrinkA": 14,
                                      "shrinkB": 14})
        for name, (x, y) in pos.items():
            colour = ("#c8e6c9" if name.startswith("c_{k-") else
                      "#ffe0b2" if name == "c_{k}" else "#bbdefb")
            axes.text(x, y, f"${name}$" if name.startswith("c_") else name, ha="center",
                      va="center", fontsize=10,
                      bbox={"boxstyle": "round,pad=0.4", "fc": colour, "ec": "0.3"})
        axes.axis("off")
        axes.set_title("reduction cell" if reduction else "normal cell")
    if title:
        fig.suptitle(title)
    if path is not None:
        save_figure(fig, path)
    return fig
