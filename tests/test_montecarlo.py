"""Monte Carlo: seeds, parameter sampling, VaR/ES, and (slow, real Ray) invariance to workers,
batching, resume and a worker killed mid-batch."""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sim import api
from sim.montecarlo import (
    TIMING_COLUMNS,
    Plan,
    _read_scenario,
    market_path_metrics,
    monte_carlo,
    risk_figures,
    run_metrics,
    run_one,
    run_seed,
    sample_overrides,
    validate_distributions,
    var_es,
)

ROOT = Path(__file__).resolve().parents[1]
DURATION = 45.0
DISTS = {
    "agents.1.params.rate_per_hour": {"dist": "uniform", "low": 30, "high": 120},
    "agents.0.params.size": {"dist": "choice", "values": [100, 200, 300]},
}


# --------------------------------------------------------------------------- seeds and sampling


def test_run_seed_is_a_pure_function_of_root_and_index():
    seeds = [run_seed(7, i) for i in range(50)]
    assert seeds == [run_seed(7, i) for i in range(50)]
    assert len(set(seeds)) == 50
    assert seeds != [run_seed(8, i) for i in range(50)]
    assert all(0 <= s < 2**32 for s in seeds)
    assert seeds[3] == int(np.random.SeedSequence(7, spawn_key=(3,)).generate_state(1)[0])


def test_sample_overrides_pure_bounded_and_independent_per_parameter():
    dists = {
        "a.u": {"dist": "uniform", "low": 1.0, "high": 2.0},
        "a.n": {"dist": "normal", "mean": 0.0, "sd": 1.0, "min": -0.5},
        "a.l": {"dist": "lognormal", "median": 10.0, "sigma": 0.5},
        "a.c": {"dist": "choice", "values": ["x", "y"], "weights": [0.0, 1.0]},
        "a.i": {"dist": "uniform", "low": 1, "high": 9, "integer": True},
    }
    draws = [sample_overrides(dists, run_seed(1, i)) for i in range(200)]
    assert draws == [sample_overrides(dists, run_seed(1, i)) for i in range(200)]
    assert all(1.0 <= d["a.u"] <= 2.0 and d["a.n"] >= -0.5 and d["a.l"] > 0 for d in draws)
    assert all(d["a.c"] == "y" for d in draws)
    assert all(isinstance(d["a.i"], int) and 1 <= d["a.i"] <= 9 for d in draws)
    assert len({d["a.u"] for d in draws}) == 200
    assert 7 < float(np.median([d["a.l"] for d in draws])) < 14
    # one stream per parameter: dropping or reordering others does not move a value
    only_u = {"a.u": dists["a.u"]}
    assert [sample_overrides(only_u, run_seed(1, i))["a.u"] for i in range(200)] == [d["a.u"] for d in draws]
    assert sample_overrides(dict(reversed(dists.items())), 5) == sample_overrides(dists, 5)
    assert sample_overrides(None, 5) == {}


@pytest.mark.parametrize(
    ("dists", "expected"),
    [
        ({"x": {"dist": "beta"}}, "monte_carlo.x.dist"),
        ({"x": {"dist": "uniform", "low": 2, "high": 1}}, "low must be <= high"),
        ({"x": {"dist": "normal", "mean": 0}}, "monte_carlo.x.sd"),
        ({"x": {"dist": "choice", "values": []}}, "monte_carlo.x.values"),
        ({"x": {"dist": "uniform", "low": 0, "high": 1, "spread": 2}}, "monte_carlo.x.spread: unknown field"),
        ({"x": {"dist": "lognormal", "sigma": 1}}, "exactly one of mu, median"),
        ({"x": 3}, "monte_carlo.x"),
    ],
)
def test_bad_distributions_name_the_path(dists, expected):
    with pytest.raises(ValueError, match=expected.replace(".", r"\.").replace("(", r"\(")):
        validate_distributions(dists)


# --------------------------------------------------------------------------- VaR / ES


def brute_var_es(losses, level):
    """Straight from the definition: the k-th largest loss, k = ceil(N(1-level)) by exact fractions."""
    from fractions import Fraction

    n = len(losses)
    k = max(1, math.ceil(n * (1 - Fraction(str(level)))))
    var = sorted(losses, reverse=True)[k - 1]
    tail = [x for x in losses if x >= var]
    return var, sum(tail) / len(tail)


def test_var_es_hand_examples():
    losses = list(range(1, 101))  # 1..100
    assert var_es(losses, 0.95) == (96.0, 98.0)  # k = 5: 96; mean(96..100)
    assert var_es(losses, 0.975) == (98.0, 99.0)  # k = ceil(2.5) = 3
    assert var_es(losses, 0.99) == (100.0, 100.0)  # k = 1
    # 200 x 0.01 is 2.0000000000000018 in binary floating point: k must still be 2
    assert var_es(list(range(1, 201)), 0.99) == (199.0, 199.5)
    # ties: ES averages every loss at or beyond VaR
    assert var_es([10, 10, 10, 1, 0, 0, 0, 0, 0, 0], 0.9) == (10.0, 10.0)
    assert var_es([7, 5, 5, 1], 0.5) == (5.0, 17 / 3)
    # small N: the worst loss; NaN dropped; gains are negative losses
    assert var_es([-3.0, -1.0, float("nan")], 0.99) == (-1.0, -1.0)
    assert all(math.isnan(x) for x in var_es([], 0.95))


def test_var_es_match_brute_force_on_random_data():
    rng = np.random.default_rng(0)
    for n in (1, 7, 40, 199, 200, 1000):
        losses = list(np.round(rng.standard_t(3, n), 2))  # rounding makes ties
        for level in (0.95, 0.975, 0.99):
            var, es = var_es(losses, level)
            bvar, bes = brute_var_es(losses, level)
            assert var == bvar and es == pytest.approx(bes, rel=1e-12)


def test_risk_figures_signs_seeded_bootstrap():
    pnl = -np.arange(1, 101, dtype=float)  # every run loses 1..100
    a = risk_figures(pnl, seed=3)
    assert a == risk_figures(pnl, seed=3)
    assert a["var"] == {"95": 96.0, "97.5": 98.0, "99": 100.0}
    assert a["es"] == {"95": 98.0, "97.5": 99.0, "99": 100.0}
    for key in ("95", "97.5", "99"):
        lo, hi = a["var_ci"][key]
        assert lo <= a["var"][key] <= hi


def test_market_path_metrics_hand_example():
    s = 1_000_000_000
    t = np.array([0, 10, 20, 30, 40, 50]) * s
    px = np.array([100.0, 101.0, 95.0, 97.0, 99.5, 100.2])
    m = market_path_metrics(t, px, open_ns=0)
    assert m["max_drawdown_pct"] == pytest.approx(6 / 101 * 100)
    assert m["trough_s"] == 20.0
    assert m["time_to_recover_s"] == 30.0  # 100.2 >= 0.99 * 101 = 99.99 at t = 50
    never = market_path_metrics(t[:4], px[:4], open_ns=0)
    assert math.isnan(never["time_to_recover_s"])


# --------------------------------------------------------------------------- one run, in process


def _plan(runs=6, seed=11, batch_size=2, dists=None, duration=DURATION):
    data, source, _sha = _read_scenario("quick")
    return Plan(data, source, seed, runs, batch_size, validate_distributions(dists), duration)


def test_run_i_equals_a_direct_api_run_with_the_derived_seed():
    plan = _plan(dists=DISTS)
    for index in (0, 4):
        row = run_one(plan, index)
        seed = run_seed(plan.seed, index)
        overrides = sample_overrides(DISTS, seed)
        direct = api.run("quick", seed=seed, duration_s=DURATION, overrides=overrides)
        expected = run_metrics(direct, index, seed, 34_200_000_000_000, 0.01)
        assert row["digest"] == direct.summary["digest"]
        for key, value in expected.items():
            if key in TIMING_COLUMNS:
                continue
            assert row[key] == value or (isinstance(value, float) and math.isnan(value) and math.isnan(row[key])), key
        assert row["param.agents.1.params.rate_per_hour"] == overrides["agents.1.params.rate_per_hour"]
        assert row["param.agents.0.params.size"] == overrides["agents.0.params.size"]


def test_no_ray_needed_for_bad_input(tmp_path):
    with pytest.raises(ValueError, match="runs must be >= 1"):
        monte_carlo("quick", runs=0, progress=False)
    with pytest.raises(ValueError, match="not a file and not a bundled scenario"):
        monte_carlo("no_such_scenario", runs=2, progress=False)
    with pytest.raises(ValueError, match=r"monte_carlo\.agents\.9\.params\.x"):
        monte_carlo(
            "quick", runs=2, progress=False, distributions={"agents.9.params.x": {"dist": "choice", "values": [1]}}
        )
    with pytest.raises(ValueError, match="resume needs"):
        monte_carlo("quick", runs=2, resume=True, progress=False)


# --------------------------------------------------------------------------- real Ray (slow)


def _scenario_with_section(tmp: Path) -> Path:
    """quick.yaml plus a monte_carlo section (so the CLI path samples parameters too)."""
    lines = ["monte_carlo:", "  distributions:"]
    for path, spec in DISTS.items():
        lines.append(f"    {path}: {json.dumps(spec)}")
    path = tmp / "quick_mc.yaml"
    path.write_text((ROOT / "scenarios" / "quick.yaml").read_text() + "\n".join(lines) + "\n")
    return path


def _frame(folder: Path) -> pd.DataFrame:
    return pd.read_parquet(folder / "runs.parquet").drop(columns=list(TIMING_COLUMNS))


def _summary(folder: Path) -> dict:
    summary = json.loads((folder / "summary.json").read_text())
    summary.pop("execution")
    return summary


RUNS = 8


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """One worker, batches of 2: the undisturbed reference run."""
    tmp = tmp_path_factory.mktemp("mc")
    scenario = _scenario_with_section(tmp)
    out = tmp / "w1"
    res = monte_carlo(
        scenario, runs=RUNS, workers=1, seed=5, out=out, batch_size=2, duration_s=DURATION, progress=False
    )
    assert len(res.runs) == RUNS and list(res.runs["run"]) == list(range(RUNS))
    return scenario, out, res


@pytest.mark.slow
def test_workers_and_batching_do_not_change_results(reference, tmp_path, capsys):
    from sim.cli import main

    scenario, ref_out, ref = reference
    # two workers, default batching, through the command line
    out = tmp_path / "w2"
    argv = ["mc", str(scenario), "--runs", str(RUNS), "--workers", "2", "--seed", "5", "--out", str(out)]
    assert main([*argv, "--duration", str(DURATION), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "VaR 99%" in printed and str(out) in printed
    assert (out / "report.html").exists()
    pd.testing.assert_frame_equal(_frame(out), _frame(ref_out))
    assert _summary(out) == {**_summary(ref_out), "batch_size": 1, "batches": RUNS}
    # in-process result equals the files; batch size 3 (uneven last batch), no files
    pd.testing.assert_frame_equal(ref.runs.drop(columns=list(TIMING_COLUMNS)), _frame(ref_out))
    res3 = monte_carlo(scenario, runs=RUNS, workers=2, seed=5, batch_size=3, duration_s=DURATION, progress=False)
    pd.testing.assert_frame_equal(res3.runs.drop(columns=list(TIMING_COLUMNS)), _frame(ref_out))
    assert res3.summary["digest"] == ref.summary["digest"]
    assert res3.summary["var"] == ref.summary["var"] and res3.summary["var_ci"] == ref.summary["var_ci"]
    # run i is the direct run with the derived seed and its sampled parameters
    seed = run_seed(5, 6)
    direct = api.run("quick", seed=seed, duration_s=DURATION, overrides=sample_overrides(DISTS, seed))
    assert ref.runs.loc[6, "digest"] == direct.summary["digest"]
    assert ref.runs["param.agents.1.params.rate_per_hour"].nunique() == RUNS


@pytest.mark.slow
def test_resume_completes_without_touching_finished_parts(reference, tmp_path):
    scenario, ref_out, _ref = reference
    out = tmp_path / "resumed"
    shutil.copytree(ref_out, out)
    parts = sorted((out / "parts").glob("batch-*.parquet"))
    assert len(parts) == RUNS // 2
    for gone in (parts[1], parts[3]):  # "interrupted": two batches never finished, no final files
        gone.unlink()
    for name in ("runs.parquet", "summary.json", "report.html"):
        (out / name).unlink()
    kept = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in (parts[0], parts[2])}
    with pytest.raises(ValueError, match="--resume"):
        monte_carlo(scenario, runs=RUNS, workers=2, seed=5, out=out, duration_s=DURATION, progress=False)
    with pytest.raises(ValueError, match="runs differs"):
        monte_carlo(scenario, runs=RUNS + 1, workers=2, seed=5, out=out, resume=True, progress=False)
    res = monte_carlo(scenario, runs=RUNS, workers=2, seed=5, out=out, resume=True, duration_s=DURATION, progress=False)
    assert res.parts_written == [1, 3]
    assert res.summary["execution"]["batches_resumed"] == 2
    for path, (data, mtime) in kept.items():
        assert path.read_bytes() == data and path.stat().st_mtime_ns == mtime
    pd.testing.assert_frame_equal(_frame(out), _frame(ref_out))
    assert _summary(out) == _summary(ref_out)


@pytest.mark.slow
def test_a_worker_killed_mid_batch_is_retried_and_changes_nothing(reference, tmp_path):
    scenario, ref_out, _ref = reference
    marker = tmp_path / "crashed-once"

    def crash_once(batch: int, index: int) -> None:  # nested, so Ray pickles it by value
        if index == 3 and not marker.exists():  # second run of batch 1, first attempt only
            marker.write_text(f"pid {os.getpid()}")
            os._exit(1)

    out = tmp_path / "killed"
    monte_carlo(
        scenario,
        runs=RUNS,
        workers=2,
        seed=5,
        out=out,
        batch_size=2,
        duration_s=DURATION,
        progress=False,
        report=False,
        hook=crash_once,
    )
    assert marker.exists(), "the worker was never killed"
    pd.testing.assert_frame_equal(_frame(out), _frame(ref_out))
    assert _summary(out) == _summary(ref_out)


@pytest.mark.slow
def test_two_node_cluster_started_with_ray_start_gives_the_same_runs(reference, tmp_path, loopback_cluster):
    """``desksim mc --address`` on ``ray start --head`` + ``ray start --address`` (``loopback_cluster``)."""
    scenario, ref_out, _ref = reference
    out = tmp_path / "cluster"
    loopback_cluster.desksim(
        "mc", str(scenario), "--runs", str(RUNS), "--seed", "5", "--batch-size", "1", "--quiet",
        "--address", loopback_cluster.address, "--duration", str(DURATION), "--out", str(out),
    )  # fmt: skip
    execution = json.loads((out / "summary.json").read_text())["execution"]
    assert len(execution["nodes"]) == 2, execution  # batches ran on both nodes
    pd.testing.assert_frame_equal(_frame(out), _frame(ref_out))
    assert _summary(out) == {**_summary(ref_out), "batch_size": 1, "batches": RUNS}
