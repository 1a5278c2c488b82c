"""Every public figure function renders a PNG without touching matplotlib's global state.

Library code draws on :class:`matplotlib.figure.Figure` objects of its own:
no ``matplotlib.use``, no pyplot figures left open, the backend unchanged.
A public function that draws (``plot_*``, ``figure_*``, ``draw_*``, or one
annotated to return a ``Figure``) anywhere in ``nord`` must be covered here.
"""

import ast
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.figure import Figure

import nord
from nord.analysis import figures, report
from nord.darts import figures as darts_figures
from nord.neural_nets import NeuralDescriptor
from nord.neural_nets import visualization
from nord.studies import figures as study_figures
from tests.analysis.test_report import store_with

PACKAGE = Path(nord.__file__).parent
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
DRAWING_PREFIXES = ("plot_", "figure_", "draw_")


def cell(conv: str = "nor_conv_3x3", pool: bool = True) -> NeuralDescriptor:
    d = NeuralDescriptor()
    d.add_layer("input", {}, "in")
    d.add_layer_sequential(conv, {}, "conv")
    if pool:
        d.add_layer_sequential("avg_pool_3x3", {}, "pool")
    d.add_layer_sequential("output", {}, "out")
    d.connect_layers("in", "out")
    return d


def render_search_comparison(path):
    return figures.plot_search_comparison(
        {"evolution": [0.3, 0.5, 0.4, 0.7, 0.6], "random": [0.2, 0.6, 0.3, 0.5, 0.4]},
        path, ylabel="validation accuracy", title="evolution against random")


def render_architecture_overlay(path):
    return figures.plot_architecture_overlay(
        [cell(), cell("nor_conv_1x1"), cell(pool=False)], path, title="three cells")


def render_new_figure(path):
    fig = figures.new_figure(3, 2)
    fig.subplots().plot([0, 1, 2], [1, 0, 1])
    figures.save_figure(fig, path)
    return fig


def render_best_so_far(path):
    return report.plot_best_so_far([0.3, 0.5, 0.4, 0.7, 0.6], path, title="evolution")


def render_fitness_ecdf(path):
    return report.plot_fitness_ecdf([0.3, 0.5, 0.4, 0.7, 0.6], path, title="evolution")


def render_descriptor(path):
    return visualization.plot_descriptor(cell(), path=path)


def render_descriptor_method(path):
    return cell().plot(path)


def render_heatmap(path):
    values = [[0.5, float("nan"), -0.2], [0.9, 0.1, 0.3]]
    return figures.draw_heatmap(values, ["adam_5", "sgd_5"], ["adam_1", "sgd_1", "sgd_2"],
                                "tau", path)


def render_rastrigin(path):
    from nord.studies.montecarlo import perturb_to_tau, rastrigin_mesh
    mesh = rastrigin_mesh(2, 30)
    noisy, tau, _ = perturb_to_tau(mesh, 0.75)
    return study_figures.draw_rastrigin(mesh, noisy, tau, path=path)


def render_accuracy_histograms(path):
    return study_figures.draw_accuracy_histograms(
        {"FTG": [0.8, 0.85, 0.9, 0.91], "36PTG": [0.7, 0.8, 0.85, 0.86]}, "accuracy",
        "two groups", path)


def render_bootstrap_distributions(path):
    rng = np.random.default_rng(0)
    return study_figures.draw_bootstrap_distributions(
        {"raw": {"4PTG": rng.normal(0.3, 0.01, 50), "36PTG": rng.normal(0.7, 0.01, 50)},
         "rounded": {"4PTG": rng.normal(0.33, 0.01, 50), "36PTG": rng.normal(0.73, 0.01, 50)}},
        {"raw": {"4PTG": 0.01, "36PTG": 0.01}, "rounded": {"4PTG": 0.01, "36PTG": 0.01}}, path)


def render_fidelity_budgets(path):
    budgets = [{"epochs": 1, "share": 0.01, "tau": 0.5, "standard_error": 0.1,
                "cost_ratio": 0.1},
               {"epochs": 4, "share": 0.02, "tau": 1.0, "standard_error": 0.0,
                "cost_ratio": 1.0}]
    return study_figures.draw_fidelity_budgets(budgets, 0.75, "deepneat", path)


#: covered function ("module:qualname") -> how to render it to a path
def render_genotype(path):
    from nord.darts.genotype import random_genotype
    return darts_figures.draw_genotype(random_genotype(np.random.default_rng(0)), path,
                                       title="a random genotype")


RENDERERS = {
    "nord.darts.figures:draw_genotype": render_genotype,
    "nord.analysis.figures:plot_search_comparison": render_search_comparison,
    "nord.analysis.figures:plot_architecture_overlay": render_architecture_overlay,
    "nord.analysis.figures:plot_epoch_curves": lambda path: figures.plot_epoch_curves(
        {"training accuracy": {"a": [0.5, 0.7, 0.8], "b": [0.4, 0.6, 0.75]},
         "validation accuracy": {"a": [0.5, 0.65, 0.7], "b": [0.45, 0.6, 0.72]}},
        path, title="final training"),
    "nord.analysis.figures:new_figure": render_new_figure,
    "nord.analysis.report:plot_best_so_far": render_best_so_far,
    "nord.analysis.report:plot_fitness_ecdf": render_fitness_ecdf,
    "nord.neural_nets.visualization:plot_descriptor": render_descriptor,
    "nord.neural_nets.neural_descriptor:NeuralDescriptor.plot": render_descriptor_method,
    "nord.analysis.figures:draw_heatmap": render_heatmap,
    "nord.studies.figures:draw_rastrigin": render_rastrigin,
    "nord.studies.figures:draw_accuracy_histograms": render_accuracy_histograms,
    "nord.studies.figures:draw_bootstrap_distributions": render_bootstrap_distributions,
    "nord.studies.figures:draw_fidelity_budgets": render_fidelity_budgets,
    "nord.studies.figures:draw_search_progress": lambda path: study_figures.draw_search_progress(
        [0.5, 0.7, 0.6, 0.8, float("nan"), 0.75], "Kendall tau", "GCN search", path),
    "nord.studies.figures:draw_grouped_boxplots": lambda path: study_figures.draw_grouped_boxplots(
        {"MAX": [0.8, 0.85, 0.7], "AVG": [0.6, 0.65], "SORT_3": [0.75]}, "Kendall tau",
        "by pooling", path),
    "nord.studies.figures:draw_tau_vs_parameters":
        lambda path: study_figures.draw_tau_vs_parameters(
            [1e4, 5e4, 2e5, 3e5], [0.7, 0.8, 0.85, 0.6], [0.5, 0.6, 0.7, 0.4], "tau vs size",
            path),
}


@pytest.fixture
def clean_pyplot():
    """No pyplot figures before the test; yields the backend in use."""
    plt.close("all")
    yield matplotlib.get_backend()
    plt.close("all")


def assert_png(path: Path, at_least: int = 4000) -> None:
    assert path.is_file()
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC
    assert len(data) >= at_least, f"{path.name} holds only {len(data)} bytes"


@pytest.mark.parametrize("function", sorted(RENDERERS))
def test_a_figure_function_renders_a_png_and_leaves_no_global_state(
        function, tmp_path, clean_pyplot):
    path = tmp_path / "figure.png"
    fig = RENDERERS[function](path)
    assert_png(path)
    assert isinstance(fig, Figure)
    assert plt.get_fignums() == []
    assert matplotlib.get_backend() == clean_pyplot
    fig.savefig(tmp_path / "again.png")  # the figure returned can be adjusted and saved again
    assert_png(tmp_path / "again.png")


def test_write_report_renders_its_two_figures(tmp_path, clean_pyplot):
    rows = [("a", "ok", 0.6, None), ("b", "ok", 0.8, None), ("a", "cached", 0.6, None),
            ("d", "ok", 0.7, None)]
    with store_with(tmp_path, rows):
        pass
    summary = report.write_report(tmp_path)
    for name in report.FIGURES:
        assert_png(tmp_path / name)
        assert f"]({name})" in summary.read_text()
    assert plt.get_fignums() == []
    assert matplotlib.get_backend() == clean_pyplot


def test_a_figure_function_without_a_path_returns_the_figure_unsaved(tmp_path, clean_pyplot):
    fig = figures.plot_search_comparison({"random": [0.1, 0.4, 0.2]})
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    assert [line.get_label() for line in fig.axes[0].get_lines()] == ["random"]
    assert list(fig.axes[0].get_lines()[0].get_ydata()) == [0.1, 0.4, 0.4]  # best so far
    assert list(tmp_path.iterdir()) == [] and plt.get_fignums() == []


# ---------------------------------------------------------------- coverage and static rules
def _modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        yield ".".join(parts[:-1] if parts[-1] == "__init__" else parts), ast.parse(
            path.read_text(encoding="utf-8"))


def _draws(function: ast.AST) -> bool:
    returns = ast.unparse(function.returns) if function.returns is not None else ""
    return function.name.startswith(DRAWING_PREFIXES) or "Figure" in returns


def drawing_functions():
    """``module:qualname`` of every public function and method in nord that draws."""
    found = set()
    for module, tree in _modules():
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                if not node.name.startswith("_") and _draws(node):
                    found.add(f"{module}:{node.name}")
            elif isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
                for item in node.body:
                    if (isinstance(item, ast.FunctionDef) and not item.name.startswith("_")
                            and (_draws(item) or item.name == "plot")):
                        found.add(f"{module}:{node.name}.{item.name}")
    return found


def test_every_public_drawing_function_in_nord_is_rendered_here():
    found = drawing_functions()
    assert "nord.analysis.figures:plot_search_comparison" in found  # the scan works
    missing = sorted(found - set(RENDERERS))
    assert missing == [], f"add a renderer to RENDERERS for {missing}"
    assert sorted(set(RENDERERS) - found) == []  # and nothing stale is listed


def _global_matplotlib_uses(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and ast.unparse(node.func) == "matplotlib.use":
            yield node.lineno, "matplotlib.use(...)"
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "matplotlib.pyplot":
                    yield node.lineno, "import matplotlib.pyplot"
        if isinstance(node, ast.ImportFrom) and (
                node.module == "matplotlib.pyplot"
                or (node.module == "matplotlib" and any(a.name == "pyplot" for a in node.names))):
            yield node.lineno, "from matplotlib import pyplot"


def test_library_code_neither_chooses_a_backend_nor_uses_pyplot():
    offenders = [f"{module}:{line} {what}" for module, tree in _modules()
                 for line, what in _global_matplotlib_uses(tree)]
    assert offenders == []
