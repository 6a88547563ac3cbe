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

from desksim import api
from desksim.montecarlo import (
    REALISM_CHECKS,
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
    # full entropy: 128 bits of SeedSequence(root, spawn_key=(i,)), not a 32-bit word
    state = np.random.SeedSequence(7, spawn_key=(3,)).generate_state(4, np.uint32)
    assert seeds[3] == sum(int(w) << (32 * j) for j, w in enumerate(state))
    assert max(seeds) >= 2**96


@pytest.mark.slow
def test_a_million_runs_get_distinct_seeds():
    """With 32-bit seeds a repeat is likely near 100k runs (birthday bound); 10^6 runs must not repeat."""
    seeds = {run_seed(1, i) for i in range(1_000_000)}
    assert len(seeds) == 1_000_000


def test_run_seed_drives_a_run_like_any_seed():
    """A 128-bit run seed is accepted by the engine; single runs with a small seed keep their streams."""
    from sim.rng import RandomStreams, name_key

    big = run_seed(7, 0)
    assert RandomStreams(big).python("x").random() == RandomStreams(big).python("x").random()
    assert RandomStreams(big).python("x").random() != RandomStreams(big + 1).python("x").random()
    assert RandomStreams((7, 0)).python("x").random() != RandomStreams((7, 1)).python("x").random()
    small = np.random.SeedSequence(7, spawn_key=name_key("x")).generate_state(4, np.uint64)
    assert RandomStreams(7).sequence("x").generate_state(4, np.uint64).tolist() == small.tolist()
    with pytest.raises(ValueError):
        RandomStreams((7, -1))


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
    """Straight from the definitions, with exact fractions: VaR the k-th largest loss,
    k = ceil(m), m = N(1-level); ES the mean of the m worst (the last one fractionally weighted)."""
    from fractions import Fraction

    n = len(losses)
    m = n * (1 - Fraction(str(level)))
    desc = sorted(losses, reverse=True)
    var = desc[max(1, math.ceil(m)) - 1]
    whole = math.floor(m)
    es = (sum(Fraction(x) for x in desc[:whole]) + (m - whole) * Fraction(desc[whole])) / m
    return var, float(es)


def test_var_es_hand_examples():
    losses = list(range(1, 101))  # 1..100
    assert var_es(losses, 0.95) == (96.0, 98.0)  # m = 5: 96; mean(96..100)
    assert var_es(losses, 0.975) == (98.0, pytest.approx(99.2))  # m = 2.5: (100 + 99 + 0.5 x 98) / 2.5
    assert var_es(losses, 0.99) == (100.0, 100.0)  # k = 1
    # 200 x 0.01 is 2.0000000000000018 in binary floating point: k must still be 2
    assert var_es(list(range(1, 201)), 0.99) == (199.0, 199.5)
    # ties (Acerbi-Tasche): a loss repeated at the VaR counts only as much as the tail needs
    assert var_es([10, 10, 10, 1, 0, 0, 0, 0, 0, 0], 0.9) == (10.0, 10.0)
    assert var_es([7, 5, 5, 1], 0.5) == (5.0, 6.0)
    # small N: the worst loss; NaN dropped; gains are negative losses
    assert var_es([-3.0, -1.0, float("nan")], 0.99) == (-1.0, -1.0)
    assert all(math.isnan(x) for x in var_es([], 0.95))


def test_one_definition_of_var_es_for_officer_and_monte_carlo():
    from actors import riskstats
    from actors.risk import historical_var_es

    rng = np.random.default_rng(3)
    losses = list(np.round(rng.standard_t(3, 250), 1))
    for level in (0.95, 0.975, 0.99):
        assert var_es(losses, level) == historical_var_es(losses, level) == riskstats.var_es(losses, level)


def test_var_es_match_brute_force_on_random_data():
    rng = np.random.default_rng(0)
    for n in (1, 7, 40, 199, 200, 1000):
        losses = list(np.round(rng.standard_t(3, n), 2))  # rounding makes ties
        for level in (0.95, 0.975, 0.99):
            var, es = var_es(losses, level)
            bvar, bes = brute_var_es(losses, level)
            assert var == bvar and es == pytest.approx(bes, rel=1e-12)


def test_risk_figures_signs_seeded_intervals():
    pnl = -np.arange(1, 401, dtype=float)  # every run loses 1..400
    a = risk_figures(pnl, seed=3)
    assert a == risk_figures(pnl, seed=3)
    assert a["var"] == {"95": 381.0, "97.5": 391.0, "99": 397.0}
    assert a["es"] == {"95": 390.5, "97.5": 395.5, "99": 398.5}
    assert a["status"] == {"95": "ok", "97.5": "ok", "99": "ok"}
    lo, hi = a["var_ci"]["95"]
    assert lo <= a["var"]["95"] <= hi
    lo, hi = a["es_ci"]["95"]
    assert lo <= a["es"]["95"] <= hi
    assert "binomial" in a["intervals"]["var"] and "studentized" in a["intervals"]["es"]


def test_a_quantile_the_sample_cannot_support_is_flagged_not_printed():
    """14.4: VaR 99 from 8 runs was printed as a number; the officer's rule (3 outcomes in the tail,
    ceil(3 / (1 - level)) runs) now says n/a and how many runs it needs."""
    a = risk_figures(-np.arange(1, 9, dtype=float), seed=1)
    assert a["var"]["99"] is None and a["es"]["99"] is None and a["var_ci"]["99"] == [None, None]
    assert a["status"]["99"] == "n/a: needs 300 runs (have 8)"
    b = risk_figures(-np.arange(1, 61, dtype=float), seed=1)
    assert b["status"]["95"] == "ok" and b["var"]["95"] == 58.0
    assert b["var"]["97.5"] is None and b["status"]["97.5"] == "n/a: needs 120 runs (have 60)"


def _runs_frame(n: int, desk_pnl: np.ndarray | None, mid_dd: np.ndarray) -> pd.DataFrame:
    from desksim.montecarlo import SCHEMA

    cols = {f.name: np.zeros(n) for f in SCHEMA}
    cols.update(run=np.arange(n), run_seed=[str(i) for i in range(n)], scenario="x", digest="d")
    cols.update({c: np.zeros(n, dtype=bool) for c in ("kill_switch", *(f"realism_{c}" for c in REALISM_CHECKS))})
    cols["desk_pnl"] = np.full(n, np.nan) if desk_pnl is None else desk_pnl
    cols["market_return_pct"] = np.linspace(-0.1, 0.1, n)  # open-to-close: not a risk figure any more
    cols["market_mid_max_drawdown_pct"] = mid_dd
    return pd.DataFrame(cols)


def test_without_a_desk_risk_figures_are_on_intraday_drawdowns():
    """14.4: without a desk VaR/ES were on open-to-close returns (flash_crash_scripted: VaR 0.91 % while the
    drawdowns averaged 4.4 %); now on the worst fall of the mid within each run, and the summary says so."""
    from desksim.montecarlo import Plan, summarize

    dd = np.arange(1, 101, dtype=float) / 10  # 0.1 .. 10 %
    s = summarize(_runs_frame(100, None, dd), Plan({}, "x", 1, 100, 10, {}, None), "x")
    assert s["risk_basis"]["desk"] is False and "drawdown" in s["risk_basis"]["what"]
    assert s["pnl_metric"] == "market_mid_max_drawdown_pct" and s["risk_basis"]["unit"].startswith("%")
    assert s["var"]["95"] == 9.6  # the 5th largest drawdown, a positive loss
    assert s["var"]["99"] is None and s["status"]["99"].startswith("n/a: needs 300 runs")


def test_with_a_desk_risk_figures_are_on_the_desk_pnl_in_currency():
    from desksim.montecarlo import Plan, summarize

    pnl = np.arange(-50, 50, dtype=float) * 100.0
    s = summarize(_runs_frame(100, pnl, np.ones(100)), Plan({}, "x", 1, 100, 10, {}, 60.0), "x")
    assert s["risk_basis"]["desk"] is True and s["risk_basis"]["unit"] == "currency"
    assert "60 s" in s["risk_basis"]["horizon"] and s["pnl_metric"] == "desk_pnl"
    assert s["var"]["95"] == 4600.0  # the 5th largest loss: minus the 5th worst P&L


def test_summary_has_the_crash_criteria_with_intervals():
    """Issue 16: summary.json gives the share of runs meeting each crash criterion with a seeded
    bootstrap interval (desksim/mc/summary.py; the measures are tested in tests/test_crash_metrics.py)."""
    from desksim.montecarlo import Plan, summarize

    runs = _runs_frame(100, None, np.ones(100))
    runs["fall_15m_pct"] = np.where(np.arange(100) % 2 == 0, 6.0, 1.0)  # 50 of 100 fall >= 5 %
    s = summarize(runs, Plan({}, "x", 1, 100, 10, {}, None), "x")
    c = s["crash"]["criteria"]["fall_5pct_15m"]
    assert (c["runs"], c["n"], c["share"]) == (50, 100, 0.5)
    assert c["ci"][0] < 0.5 < c["ci"][1] and c["ci"][1] - c["ci"][0] == pytest.approx(0.2, abs=0.04)
    assert s["crash"]["criteria"]["fall_3pct_15m"]["share"] == 0.5
    assert s["crash"]["criteria"]["all_2010"]["runs"] == 0  # the other measures are 0 here
    assert s["crash"] == summarize(runs, Plan({}, "x", 1, 100, 10, {}, None), "x")["crash"]


def test_mid_drawdown_of_a_run():
    from desksim.montecarlo import _mid_drawdown_pct

    q = pd.DataFrame({"time_ns": [1, 2, 3, 4], "bid": [99, 109, 89, 100], "ask": [101.0, 111.0, np.nan, 102.0]})
    assert _mid_drawdown_pct(q, 0) == pytest.approx((110 - 101) / 110 * 100)  # the one-sided quote is skipped


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
    from desksim.cli import main

    scenario, ref_out, ref = reference
    # two workers, default batching, through the command line
    out = tmp_path / "w2"
    argv = ["mc", str(scenario), "--runs", str(RUNS), "--workers", "2", "--seed", "5", "--out", str(out)]
    assert main([*argv, "--duration", str(DURATION), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "VaR 99%" in printed and str(out) in printed
    assert "realism against real days" in printed and "every target" in printed  # per target, over runs
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


# --------------------------------------------------------------------------- the store cannot lie


def test_the_digest_covers_every_metric():
    from desksim.montecarlo import metrics_digest

    runs = pd.DataFrame(
        {"run": [0, 1], "digest": ["a", "b"], "market_return_pct": [0.5, -1.25], "kill_switch": [False, True]}
    )
    runs["wall_s"] = [1.0, 2.0]
    base = metrics_digest(runs)
    assert metrics_digest(runs.iloc[::-1]) == base  # run order, not row order
    assert metrics_digest(runs.assign(wall_s=[9.0, 9.0])) == base  # timing is not a result
    changed = runs.copy()
    changed.loc[1, "market_return_pct"] = -1.2500000000000002  # one flipped low bit of one metric
    assert metrics_digest(changed) != base
    assert metrics_digest(runs.assign(kill_switch=[False, False])) != base


def test_resume_refuses_a_folder_without_its_manifest(tmp_path, capsys):
    from desksim.cli import main

    out = tmp_path / "mc"
    (out / "parts").mkdir(parents=True)
    (out / "parts" / "batch-00000.parquet").write_bytes(b"PAR1 from somewhere else")
    with pytest.raises(ValueError, match=r"no mc\.json"):
        monte_carlo("quick", runs=2, seed=1, out=out, resume=True, progress=False)
    argv = ["mc", "quick", "--runs", "2", "--seed", "1", "--out", str(out), "--resume", "--quiet"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no mc.json" in err
    assert sorted(p.name for p in out.rglob("*")) == ["batch-00000.parquet", "parts"]  # nothing written


@pytest.mark.slow
def test_resume_recomputes_damaged_or_foreign_parts(reference, tmp_path, capsys):
    """A truncated part, a part with one flipped byte and a valid part of another batch copied in
    are each recomputed (and said so), never adopted; the result equals the undisturbed run."""
    scenario, ref_out, _ref = reference
    out = tmp_path / "damaged"
    shutil.copytree(ref_out, out)
    for name in ("runs.parquet", "summary.json", "report.html"):
        (out / name).unlink()
    parts = sorted((out / "parts").glob("batch-*.parquet"))
    data = parts[0].read_bytes()
    parts[0].write_bytes(data[: len(data) // 2])  # truncated
    data = bytearray(parts[1].read_bytes())
    data[len(data) // 3] ^= 0x01  # one flipped bit
    parts[1].write_bytes(bytes(data))
    shutil.copyfile(parts[3], parts[2])  # a valid part of batch 3 posing as batch 2
    res = monte_carlo(scenario, runs=RUNS, workers=2, seed=5, out=out, resume=True, duration_s=DURATION, progress=False)
    err = capsys.readouterr().err
    assert res.parts_written == [0, 1, 2]
    assert res.summary["execution"]["batches_recomputed"] == [0, 1, 2]
    assert err.count("recomputing batch") == 3
    pd.testing.assert_frame_equal(_frame(out), _frame(ref_out))
    assert _summary(out) == _summary(ref_out)
    manifest = json.loads((out / "mc.json").read_text())
    assert sorted(manifest["parts"]) == ["0", "1", "2", "3"]
