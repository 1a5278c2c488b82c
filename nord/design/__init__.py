"""Search: spaces (what can be proposed) and strategies (how to propose).

Strategies only ``ask`` and ``tell``; they never evaluate, print or touch
files, and draw every random choice from their own ``numpy.random.Generator``.
The run loop in :mod:`nord.execution` connects them to evaluators and stores.
"""
