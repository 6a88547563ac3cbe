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
from tests.helpers import run_summaries


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


@pytest.fixture(scope="module")
def seeds_1_to_5():
    stats = run_summaries("baseline", range(1, 6))
    print(format_table({seed: s["realism"] for seed, s in stats.items()}))
    return stats


@pytest.mark.slow
def test_baseline_stylised_facts_seeds_1_to_5(seeds_1_to_5):
    """Fat tails on every seed; no autocorrelation, volatility clustering and volume moving with |r|
    each on at least 4 of the 5 seeds (issue 16 asks lag-1 autocorrelation within 0.1 on 9 of 10);
    on every seed 1-minute kurtosis within the real days' range and above the 30-minute one (issue
    16: "on every seed"; seed 2 failed that until the 30-minute kurtosis became the mean over its 30
    grids), and at least 12 of issue 16's 13 checks against real large-cap days
    (desksim/analytics/targets.py)."""
    from desksim.analytics.targets import grade

    passed = {seed: checks(s["realism"]) for seed, s in seeds_1_to_5.items()}
    for seed, summary in seeds_1_to_5.items():
        assert summary["trades"] > 5000, seed
        assert passed[seed]["heavy_tails"], seed
        graded = grade(summary["realism"])
        assert graded["kurtosis_1m"] and graded["kurtosis_drop_1m_30m"], (seed, summary["realism"]["kurtosis_30m"])
        assert len(graded) == 13 and sum(bool(v) for v in graded.values()) >= 12, (seed, graded)
    for fact in ("no_autocorrelation", "volatility_clustering", "volume_volatility"):
        assert sum(p[fact] for p in passed.values()) >= 4, fact


@pytest.mark.slow
@pytest.mark.xfail(
    strict=True,
    reason="open (issue 16): with the 2026-12-05 volatility bursts seed 5's 1-minute returns have a "
    "lag-1 autocorrelation of 0.109 (real days within 0.1); strict: passing means update this test",
)
def test_baseline_every_stylised_fact_on_every_seed_1_to_5(seeds_1_to_5):
    failed = {seed: [k for k, ok in checks(s["realism"]).items() if not ok] for seed, s in seeds_1_to_5.items()}
    assert not any(failed.values()), failed
