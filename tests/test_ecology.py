"""The bundled baseline market: its agent mix, stream independence and stylised facts."""

import pytest

from desksim import api
from desksim.analytics.realism import checks, format_table
from desksim.assembly import build, make_world
from scenarios.schema import load
from sim.kernel import Kernel
from sim.network import Network
from sim.record import Recorder
from sim.rng import RandomStreams


def test_baseline_agent_mix():
    scenario = load("baseline")
    counts = {}
    for group in scenario.agents:
        counts[group.kind] = counts.get(group.kind, 0) + group.count
    assert counts == {"ladder_maker": 1, "as_maker": 1, "value": 100, "momentum": 12, "noise": 1000}
    assert (scenario.session.open, scenario.session.close, scenario.symbol) == ("09:30", "16:00", "XYZ")


def _first_draws(scenario, seed, n=5):
    assembly = build(scenario, Recorder(), seed)
    kernel = Kernel(Network(assembly.network), RandomStreams(seed))
    for actor in assembly.actors:
        kernel.add(actor)
    return {a.name: [a.random.random() for _ in range(n)] for a in assembly.actors}


def test_adding_an_agent_does_not_change_anyone_elses_random_draws():
    base = load("baseline")
    extra = load(
        "baseline",
        {
            "agents": [
                *(a.model_dump(by_alias=True) for a in base.agents),
                {"kind": "noise", "name": "latecomer", "count": 3},
            ]
        },
    )
    # put the newcomers first too: ids shift, names and streams must not
    first = load(
        "baseline",
        {
            "agents": [
                {"kind": "noise", "name": "early", "count": 2},
                *(a.model_dump(by_alias=True) for a in base.agents),
            ]
        },
    )
    before = _first_draws(base, 11)
    for changed in (extra, first):
        after = _first_draws(changed, 11)
        assert set(before) < set(after)
        assert all(after[name] == draws for name, draws in before.items())
    assert list(make_world(base, 11).fundamental.path) == list(make_world(extra, 11).fundamental.path)


def test_summary_has_realism_statistics():
    res = api.run("baseline", seed=3, duration_s=1800)
    realism = res.summary["realism"]
    assert realism["n_trades"] == res.summary["trades"] > 1000
    assert set(checks(realism)) == {"heavy_tails", "no_autocorrelation", "volatility_clustering", "volume_volatility"}


@pytest.mark.slow
def test_baseline_realism_seeds_1_to_5():
    """Issue 16's real-day ranges (desksim/analytics/targets.py), full days on seeds 1-5: at least
    11 of the 13 checks pass on every seed (measured 2026-12-04: 12, 13, 12, 12, 12; seeds 1-10
    pass 119 of 130 -- the note lists the misses), and no seed falls 3 % within 15 minutes (no
    false crash). Before the 2026-12-04 calibration these seeds passed 7-10."""
    from desksim.analytics.crash import worst_fall
    from desksim.analytics.targets import grade

    runs = {seed: api.run("baseline", seed=seed) for seed in range(1, 6)}
    print(format_table({seed: r.summary["realism"] for seed, r in runs.items()}))
    for seed, res in runs.items():
        assert res.summary["trades"] > 5000, seed
        grades = grade(res.summary["realism"])
        failed = [key for key, ok in grades.items() if ok is False]
        assert len(failed) <= 2, f"seed {seed}: {failed}"
        trades = res.frames["trades"]
        assert worst_fall(trades["time_ns"].to_numpy(), trades["price"].to_numpy()).pct < 3.0, seed
