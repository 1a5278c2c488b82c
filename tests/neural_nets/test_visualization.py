"""Tests for nord.neural_nets.visualization (networkx, DOT, matplotlib views)."""

import re

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import networkx as nx  # noqa: E402
import pytest  # noqa: E402
import torch.nn as nn  # noqa: E402

from nord.neural_nets import NeuralDescriptor  # noqa: E402
from nord.neural_nets.visualization import (  # noqa: E402
    params_summary,
    plot_descriptor,
    to_dot,
    to_networkx,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

LISTING_EDGES = {("conv", "conv2"), ("conv2", "conv3"), ("conv3", "pool2"),
                 ("conv2", "pool1"), ("pool1", "pool2")}


def listing_3_1():
    d = NeuralDescriptor()
    d.add_layer(nn.Conv2d, {"in_channels": 3, "out_channels": 5, "kernel_size": 3}, "conv")
    d.add_layer(nn.Conv2d, {"in_channels": 5, "out_channels": 10, "kernel_size": 5}, "conv2")
    d.add_layer(nn.Conv2d, {"in_channels": 5, "out_channels": 10, "kernel_size": 3}, "conv3")
    d.add_layer(nn.MaxPool2d, {"kernel_size": 2, "stride": 2}, "pool1")
    d.add_layer(nn.MaxPool2d, {"kernel_size": 2, "stride": 5}, "pool2")
    d.connect_layers("conv", "conv2")
    d.connect_layers("conv2", "conv3")
    d.connect_layers("conv3", "pool2")
    d.connect_layers("conv2", "pool1")
    d.connect_layers("pool1", "pool2")
    return d


def with_inactive_and_dangling():
    """Listing 3.1 plus a dead-end branch and a connection to a missing layer."""
    d = listing_3_1()
    d.add_layer(nn.ReLU, {}, "dead")
    d.last_layer = "pool2"
    d.connect_layers("conv2", "dead")
    d.connections["conv3"].append("ghost")      # dangling destination
    d.connections["phantom"] = ["pool2"]        # dangling source
    return d


def cyclic():
    d = NeuralDescriptor()
    d.add_layer_sequential(nn.Conv2d, {"in_channels": 3, "out_channels": 4, "kernel_size": 3}, "a")
    d.add_layer_sequential(nn.ReLU, {}, "b")
    d.add_layer_sequential(nn.Conv2d, {"in_channels": 4, "out_channels": 4, "kernel_size": 1}, "c")
    d.connect_layers("c", "b")   # b -> c -> b
    d.connect_layers("b", "b")   # self-loop
    return d


# ---------------------------------------------------------------- DOT parsing
_Q = r'"((?:[^"\\]|\\.)*)"'


def _unquote(text):
    return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), text)


def dot_nodes(dot):
    """name -> attribute text, for each node statement (in order)."""
    found = []
    for line in dot.splitlines():
        m = re.fullmatch(r"\s*" + _Q + r"\s*\[(.*)\];", line)
        if m:
            found.append((_unquote(m.group(1)), m.group(2)))
    return found


def dot_edges(dot):
    found = []
    for line in dot.splitlines():
        m = re.fullmatch(r"\s*" + _Q + r"\s*->\s*" + _Q + r"(.*);", line)
        if m:
            found.append((_unquote(m.group(1)), _unquote(m.group(2)), m.group(3)))
    return found


# ---------------------------------------------------------------- networkx
def test_networkx_listing_nodes_edges_and_attributes():
    d = listing_3_1()
    g = to_networkx(d)
    assert isinstance(g, nx.DiGraph)
    assert list(g.nodes) == ["conv", "conv2", "conv3", "pool1", "pool2"]
    assert set(g.edges) == LISTING_EDGES
    assert g.graph == {"first_layer": "conv", "last_layer": "pool2"}
    assert g.nodes["conv"] == {
        "layer": nn.Conv2d, "label": "Conv2d",
        "params": {"in_channels": 3, "out_channels": 5, "kernel_size": 3},
        "role": "input", "active": True}
    assert g.nodes["pool2"]["layer"] is nn.MaxPool2d
    assert g.nodes["pool2"]["label"] == "MaxPool2d"
    assert {n: a["role"] for n, a in g.nodes(data=True)} == {
        "conv": "input", "conv2": "hidden", "conv3": "hidden",
        "pool1": "hidden", "pool2": "output"}
    assert all(a["active"] for _, a in g.nodes(data=True))


def test_networkx_params_are_copies():
    d = listing_3_1()
    g = d.to_networkx()
    g.nodes["conv"]["params"]["kernel_size"] = 99
    assert d.layers["conv"].params["kernel_size"] == 3


def test_networkx_inactive_and_dangling():
    d = with_inactive_and_dangling()
    g = to_networkx(d)
    assert list(g.nodes) == ["conv", "conv2", "conv3", "pool1", "pool2", "dead"]
    assert set(g.edges) == LISTING_EDGES | {("conv2", "dead")}
    assert "ghost" not in g and "phantom" not in g
    assert {n: (a["role"], a["active"]) for n, a in g.nodes(data=True)} == {
        "conv": ("input", True), "conv2": ("hidden", True),
        "conv3": ("hidden", True), "pool1": ("hidden", True),
        "pool2": ("output", True), "dead": ("hidden", False)}
    assert g.nodes["dead"]["layer"] is nn.ReLU
    assert g.nodes["dead"]["params"] == {}


def test_networkx_op_string_layer():
    d = NeuralDescriptor()
    d.add_layer("input", None, "in")
    d.add_layer_sequential("conv3x3-bn-relu", {"out_channels": 8}, "op")
    g = to_networkx(d)
    assert g.nodes["op"]["layer"] == "conv3x3-bn-relu"
    assert g.nodes["op"]["label"] == "conv3x3-bn-relu"
    assert [g.nodes[n]["role"] for n in g] == ["input", "output"]


# ---------------------------------------------------------------- DOT
def test_dot_listing_each_node_and_edge_once():
    d = listing_3_1()
    dot = to_dot(d)
    assert dot.startswith("digraph ") and dot.rstrip().endswith("}")
    nodes = dot_nodes(dot)
    assert [n for n, _ in nodes] == list(d.layers)
    edges = dot_edges(dot)
    assert [(a, b) for a, b, _ in edges] == list(d.edges())  # insertion order
    for name in d.layers:
        assert dot.count(f'"{name}" [') == 1
    attrs = dict(nodes)
    assert "shape=invhouse" in attrs["conv"]
    assert "shape=house" in attrs["pool2"]
    assert "shape=box" in attrs["conv2"]
    assert r'label="conv2\nConv2d\nk=5 c=10 in=5"' in attrs["conv2"]
    assert "dashed" not in dot


def test_dot_is_deterministic():
    d = listing_3_1()
    assert to_dot(d) == to_dot(d.copy()) == d.to_dot()


def test_dot_inactive_style_and_dangling_skipped():
    d = with_inactive_and_dangling()
    dot = to_dot(d)
    attrs = dict(dot_nodes(dot))
    assert list(attrs) == list(d.layers)
    assert "dashed" in attrs["dead"] and "grey" in attrs["dead"]
    assert all("dashed" not in attrs[n] for n in d.layers if n != "dead")
    edges = {(a, b): rest for a, b, rest in dot_edges(dot)}
    assert set(edges) == LISTING_EDGES | {("conv2", "dead")}
    assert "dashed" in edges[("conv2", "dead")]
    assert all("dashed" not in edges[e] for e in LISTING_EDGES)
    assert "ghost" not in dot and "phantom" not in dot


def test_dot_escapes_weird_names():
    weird = ['in "put"', "a.b c", "back\\slash", "tail\\", "new\nline", "{x}; y -> z"]
    d = NeuralDescriptor()
    for name in weird:
        d.add_layer_sequential(nn.ReLU, None, name)
    dot = to_dot(d)
    assert [n for n, _ in dot_nodes(dot)] == weird
    assert [(a, b) for a, b, _ in dot_edges(dot)] == list(zip(weird, weird[1:]))
    # every statement stays on its own line: no raw newline leaks from a name
    assert len(dot.splitlines()) == 4 + len(weird) + (len(weird) - 1) + 1
    assert '"in \\"put\\"" [' in dot


def test_params_summary():
    assert params_summary({"in_channels": 5, "out_channels": 10, "kernel_size": 3}) \
        == "k=3 c=10 in=5"
    assert params_summary({}) == ""
    assert params_summary({"kernel_size": (3, 3), "p": 0.5}) == "k=3x3 p=0.5"
    long = params_summary({f"key{i}": "v" * 50 for i in range(10)})
    assert len(long) <= 45 and long.endswith("…")


# ---------------------------------------------------------------- matplotlib
def _check_png(path):
    assert path.exists()
    data = path.read_bytes()
    assert len(data) > 0
    assert data[:8] == PNG_MAGIC


def test_plot_writes_png_and_leaves_no_open_figure(tmp_path, monkeypatch):
    monkeypatch.setattr(plt, "show", lambda *a, **k: pytest.fail("plt.show called"))
    before = plt.get_fignums()
    path = tmp_path / "listing.png"
    fig = listing_3_1().plot(str(path))
    _check_png(path)
    assert isinstance(fig, matplotlib.figure.Figure)
    assert plt.get_fignums() == before


def test_plot_inactive_and_dangling(tmp_path):
    path = tmp_path / "inactive.png"
    plot_descriptor(with_inactive_and_dangling(), path=path)
    _check_png(path)


def test_plot_cyclic_does_not_hang(tmp_path):
    path = tmp_path / "cyclic.png"
    fig = plot_descriptor(cyclic(), path=str(path))
    _check_png(path)
    assert fig is not None


def test_plot_on_given_axes(tmp_path):
    fig, ax = plt.subplots(figsize=(3, 3))
    try:
        path = tmp_path / "ax.png"
        assert plot_descriptor(listing_3_1(), path=path, ax=ax) is fig
        _check_png(path)
        assert plt.fignum_exists(fig.number)  # the caller's figure stays open
    finally:
        plt.close(fig)


def test_plot_without_path_returns_figure():
    fig = plot_descriptor(listing_3_1())
    try:
        assert isinstance(fig, matplotlib.figure.Figure)
        assert len(fig.axes) == 1
    finally:
        plt.close(fig)


def test_plot_weird_and_empty_descriptors(tmp_path):
    d = NeuralDescriptor()
    d.add_layer(nn.ReLU, None, "cost $x$ \\ \"q\"")
    plot_descriptor(d, path=tmp_path / "weird.png")
    _check_png(tmp_path / "weird.png")
    plot_descriptor(NeuralDescriptor(), path=tmp_path / "empty.png")
    _check_png(tmp_path / "empty.png")
    assert to_dot(NeuralDescriptor()).count("->") == 0
    assert len(to_networkx(NeuralDescriptor())) == 0
