"""14.3: one number per fact, with its unit: every number in summary.json has a documented unit
(desksim/units.py -> docs/summary.md), and the desk's and the account's P&L agree or name their difference."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from desksim import api
from desksim.units import markdown, unit_of

ROOT = Path(__file__).resolve().parents[1]
GONE = ("total_pnl", "total_pnl_ccy", "final_price", "shortfall_ticks", "cash_ticks", "hist_var", "max_drawdown")


def numeric_leaves(value: Any, path: str = "") -> list[str]:
    """Dotted paths of every number (bools aside), list items as ``[]``."""
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in numeric_leaves(v, f"{path}.{k}" if path else str(k))]
    if isinstance(value, list):
        return [p for v in value for p in numeric_leaves(v, f"{path}.[]")]
    return [path] if isinstance(value, int | float) and not isinstance(value, bool) else []


def undocumented(summary: dict[str, Any]) -> list[str]:
    return sorted({p for p in numeric_leaves(summary) if unit_of(p) is None})


@pytest.fixture(scope="module")
def desk_summary(tmp_path_factory) -> dict[str, Any]:
    """summary.json of a run with a desk, its OMS and a risk officer (kill_switch_drill, 5 minutes)."""
    out = tmp_path_factory.mktemp("units") / "run"
    api.run("kill_switch_drill", seed=1, out=out, duration_s=300)
    return json.loads((out / "summary.json").read_text())


def test_docs_summary_md_is_generated_from_the_units_table():
    assert (ROOT / "docs" / "summary.md").read_text(encoding="utf-8") == markdown(), (
        "docs/summary.md is stale: run .venv/bin/python -m desksim.units > docs/summary.md"
    )


def test_every_number_in_a_run_summary_has_a_documented_unit(desk_summary):
    assert {"desk", "oms", "risk", "pnl", "realism"} <= set(desk_summary)
    assert undocumented(desk_summary) == []
    sections = ("desk", "oms", "risk", "reconciliation")
    for key in GONE:  # the ambiguous names are gone (their facts are under unit-named keys)
        paths = [p for p in numeric_leaves(desk_summary) if p.split(".")[0] in sections]
        assert not any(p.rsplit(".", 1)[-1] == key for p in paths), key


def test_every_number_in_a_monte_carlo_summary_has_a_documented_unit():
    from desksim.montecarlo import REALISM_CHECKS, SCHEMA, Plan, summarize

    n = 10
    cols: dict[str, Any] = {f.name: np.zeros(n) for f in SCHEMA}
    cols.update(run=np.arange(n), run_seed=[str(i) for i in range(n)], scenario="x", digest="d")
    cols.update({c: np.zeros(n, dtype=bool) for c in ("kill_switch", *(f"realism_{c}" for c in REALISM_CHECKS))})
    cols["desk_pnl"] = np.arange(n) * 10.0
    cols["param.agents.1.params.rate_per_hour"] = np.linspace(30, 90, n)
    dists = {"agents.1.params.rate_per_hour": {"dist": "uniform", "low": 30, "high": 90}}
    summary = summarize(pd.DataFrame(cols), Plan({}, "x", 1, n, 5, dists, 60.0), "x")
    summary["execution"] = {"workers": 2, "wall_seconds": 1.0, "runs_per_second": 10.0, "nodes": {"n1": 2}}
    assert undocumented(json.loads(json.dumps(summary))) == []


def test_desk_and_account_pnl_agree_or_name_their_difference(desk_summary):
    """desk.total_pnl -11,434 beside oms.total_pnl_ccy -11,459: the desk marks its position at the
    mid, the OMS at the last trade; orders others send through the OMS count only in the account."""
    s = desk_summary
    pnl, desk, oms = s["pnl"], s["desk"], s["oms"]
    assert pnl["account_ccy"] == pytest.approx(oms["pnl_ccy"]) and pnl["desk_ccy"] == pytest.approx(desk["pnl_ccy"])
    assert pnl["difference_ccy"] == pytest.approx(pnl["account_ccy"] - pnl["desk_ccy"])
    assert pnl["difference_ccy"] == pytest.approx(pnl["marks_ccy"] + pnl["other_fills_ccy"])
    mark = oms["positions"]["XYZ"]["mark_ticks"]
    expected = desk["final_position"] * (mark - desk["final_mid_ticks"]) * s["tick_size"]
    assert pnl["marks_ccy"] == pytest.approx(expected)
    assert oms["pnl_ccy"] == pytest.approx(oms["realized_ccy"] + oms["unrealized_ccy"])
    assert s["reconciliation"]["cash_tick_shares"] * s["tick_size"] == pytest.approx(oms["cash_ccy"])
