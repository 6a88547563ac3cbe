"""desksim's application layer: scenario assembly, Python API, command line, Monte Carlo, reports.

The only package that knows every other one. Users write ``from desksim import api``.
"""
