"""Pure graph algorithms over descriptors: reachability, cycles, order.

They only read ``layers``, ``connections``, ``first_layer`` and
``last_layer``, ignore connections to unknown layers (``validate`` reports
those) and never loop forever on a cyclic graph.
"""

from __future__ import annotations

import heapq
from typing import Dict, Iterable, List, Set

from nord.errors import CycleError

__all__ = ["successors", "predecessors", "active_nodes", "find_cycles", "topological_order",
           "strongly_connected_components"]


def successors(descriptor) -> Dict[str, List[str]]:
    """name → destinations that exist, for every layer."""
    known = descriptor.layers
    return {name: [d for d in descriptor.connections.get(name, ()) if d in known]
            for name in known}


def predecessors(descriptor) -> Dict[str, List[str]]:
    """name → sources that exist, for every layer, in insertion order of sources."""
    preds: Dict[str, List[str]] = {name: [] for name in descriptor.layers}
    for src, dsts in successors(descriptor).items():
        for dst in dsts:
            preds[dst].append(src)
    return preds


def _reachable(start: str, adjacency: Dict[str, List[str]]) -> Set[str]:
    seen = {start}
    stack = [start]
    while stack:
        for nxt in adjacency[stack.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    return seen


def active_nodes(descriptor) -> List[str]:
    """Layers on a path from ``first_layer`` to ``last_layer``, insertion order.

    Empty when there is no such path (or the roles name unknown layers).
    """
    first, last = descriptor.first_layer, descriptor.last_layer
    if first not in descriptor.layers or last not in descriptor.layers:
        return []
    forward = _reachable(first, successors(descriptor))
    if last not in forward:
        return []
    backward = _reachable(last, predecessors(descriptor))
    keep = forward & backward
    return [name for name in descriptor.layers if name in keep]


def strongly_connected_components(nodes: Iterable[str],
                                  adjacency: Dict[str, List[str]]) -> List[List[str]]:
    """Tarjan's algorithm, iterative (no recursion limit on long chains)."""
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    on_stack: Set[str] = set()
    stack: List[str] = []
    components: List[List[str]] = []
    counter = 0
    for root in nodes:
        if root in index:
            continue
        work = [(root, iter(adjacency[root]))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(adjacency[child])))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                components.append(component)
    return components


def find_cycles(descriptor) -> List[List[str]]:
    """One cycle (as an ordered list of layers) per cyclic part of the graph.

    Each strongly connected component with more than one layer, or a layer
    connected to itself, yields one cycle through its earliest-added layer.
    Runs in linear time, so it cannot hang on a densely cyclic graph.
    """
    adjacency = successors(descriptor)
    order = {name: i for i, name in enumerate(descriptor.layers)}
    cycles = []
    for component in strongly_connected_components(descriptor.layers, adjacency):
        members = set(component)
        start = min(component, key=order.__getitem__)
        if len(component) == 1 and start not in adjacency[start]:
            continue
        cycles.append(_cycle_through(start, members, adjacency))
    cycles.sort(key=lambda c: order[c[0]])
    return cycles


def _cycle_through(start: str, members: Set[str], adjacency: Dict[str, List[str]]) -> List[str]:
    """Shortest cycle from ``start`` back to itself inside one component (BFS)."""
    parent: Dict[str, str] = {}
    frontier = [start]
    seen = {start}
    while frontier:
        nxt_frontier = []
        for node in frontier:
            for child in adjacency[node]:
                if child not in members:
                    continue
                if child == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(parent[path[-1]])
                    return path[::-1]
                if child not in seen:
                    seen.add(child)
                    parent[child] = node
                    nxt_frontier.append(child)
        frontier = nxt_frontier
    return [start]  # unreachable for a genuine component


def topological_order(descriptor, nodes: Iterable[str] = None) -> List[str]:
    """``nodes`` (default: all layers) in an order where sources come first.

    Ties are broken by insertion order, never by name, so the order is
    deterministic. Raises :class:`CycleError` naming a cycle if there is one.
    """
    nodes = list(descriptor.layers if nodes is None else nodes)
    keep = set(nodes)
    adjacency = successors(descriptor)
    indegree = {n: 0 for n in nodes}
    for src in nodes:
        for dst in adjacency[src]:
            if dst in keep:
                indegree[dst] += 1
    rank = {n: i for i, n in enumerate(descriptor.layers)}
    ready = [(rank[n], n) for n in nodes if indegree[n] == 0]
    heapq.heapify(ready)
    order: List[str] = []
    while ready:
        _, node = heapq.heappop(ready)
        order.append(node)
        for dst in adjacency[node]:
            if dst in keep:
                indegree[dst] -= 1
                if indegree[dst] == 0:
                    heapq.heappush(ready, (rank[dst], dst))
    if len(order) < len(nodes):
        cycle = next(c for c in find_cycles(descriptor) if set(c) <= keep)
        raise CycleError("connections form a cycle: " + " -> ".join(cycle + [cycle[0]]),
                         layers=cycle)
    return order
