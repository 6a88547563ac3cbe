"""desksim engine: clock, kernel, actors, network, random streams, recorder, runtimes.

Nothing in this package knows about markets.
"""
