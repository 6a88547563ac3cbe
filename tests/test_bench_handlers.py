"""benchmarks/bench_run.py --handlers: every delivery is timed once, under its actor and message type."""

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _bench_run():
    """benchmarks/bench_run.py as a module (registered first: its dataclasses look it up by name)."""
    if "bench_run" not in sys.modules:
        spec = importlib.util.spec_from_file_location("bench_run", ROOT / "benchmarks" / "bench_run.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["bench_run"] = module
        spec.loader.exec_module(module)
    return sys.modules["bench_run"]


def test_handler_times_count_every_delivery_once():
    from desksim import api

    wall, acc, kernel = _bench_run().handler_times("quick", 3, duration_s=120)
    deliveries = sum(n for _ns, n in acc.values())
    assert deliveries == kernel.messages_delivered + kernel.wakeups_delivered > 1000
    assert wall > 0 and all(ns >= 0 for ns, _n in acc.values())
    untimed = api.run("quick", seed=3, duration_s=120).summary
    assert acc[("Exchange", "SubmitOrder")][1] == untimed["orders"]
    # the timers do not change the run: the same messages as an untimed run
    assert kernel.messages_delivered == untimed["messages_delivered"]
