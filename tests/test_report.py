"""Reports: PNG plots and a self-contained report.html for run folders and Monte Carlo folders."""

from __future__ import annotations

import base64
import json
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from desksim import api
from desksim.cli import main
from desksim.report import write_report
from desksim.report.plots import SIDECAR, halt_spans, kill_switch_spans, plot_problems, time_weighted

PNG = b"\x89PNG\r\n\x1a\n"
S = 1_000_000_000
OPEN = 34_200 * S


class Refs(HTMLParser):
    """Every attribute that could load something, every <img>, every table heading."""

    def __init__(self) -> None:
        super().__init__()
        self.refs: list[tuple[str, str, str]] = []
        self.imgs: list[str] = []
        self.tags: set[str] = set()
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        for name, value in attrs:
            if name in ("src", "href", "srcset", "data", "action", "poster"):
                self.refs.append((tag, name, value or ""))
        if tag == "img":
            self.imgs.append(dict(attrs).get("src", ""))

    def handle_data(self, data):
        self.text.append(data)


def check_self_contained(html_path: Path) -> Refs:
    text = html_path.read_text(encoding="utf-8")
    parser = Refs()
    parser.feed(text)
    assert not {"script", "link", "iframe", "object", "embed"} & parser.tags
    for _tag, _name, value in parser.refs:
        assert value.startswith("data:image/png;base64,"), value[:80]
    assert "url(" not in text and "@import" not in text
    for src in parser.imgs:
        assert base64.b64decode(src.split(",", 1)[1]).startswith(PNG)
    return parser


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "quick"
    api.run("quick", seed=3, out=out)
    return out


def test_report_of_a_quick_run(quick_run):
    html = write_report(quick_run)
    assert html == quick_run / "report.html"
    for name in ("price.png", "spread_depth.png"):
        assert (quick_run / name).read_bytes().startswith(PNG)
    assert not (quick_run / "desk.png").exists()  # no pnl table in this run
    parser = check_self_contained(html)
    assert len(parser.imgs) == 2
    text = " ".join(parser.text)
    summary = json.loads((quick_run / "summary.json").read_text())
    assert summary["digest"] in text
    assert "Realism" in text
    for check in ("heavy tails", "no autocorrelation", "volatility clustering", "volume volatility"):
        assert check in text
    assert text.count("pass") + text.count("fail") >= 4
    assert not list(quick_run.glob(".*tmp*"))  # atomic writes leave nothing behind


def test_report_marks_halts_risk_events_kill_switch_and_desk(quick_run, tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    for f in quick_run.glob("*.parquet"):
        (folder / f.name).write_bytes(f.read_bytes())
    (folder / "summary.json").write_text((quick_run / "summary.json").read_text())
    halts = pd.DataFrame(
        {
            "time_ns": [OPEN + 120 * S, OPEN + 125 * S, OPEN + 425 * S],
            "symbol": "XYZ",
            "event": ["limit_state_entered", "halted", "resumed"],
            "reason": ["band", "luld", "auction"],
            "price": [5000, None, 5001],
        }
    )
    halts.to_parquet(folder / "halts.parquet")
    risk = pd.DataFrame(
        {
            "time_ns": [OPEN + 60 * S, OPEN + 200 * S, OPEN + 500 * S],
            "actor": "risk",
            "kind": ["order_rate", "kill_switch", "kill_switch_off"],
            "limit": [10, 0, 0],
            "value": [11, 0, 0],
            "action": ["reject", "kill", "release"],
        }
    )
    risk.to_parquet(folder / "risk_events.parquet")
    t = np.arange(OPEN, OPEN + 600 * S, S)
    pd.DataFrame({"time_ns": t, "position": np.arange(t.size) * 10, "pnl": np.sin(np.arange(t.size) / 50)}).to_parquet(
        folder / "pnl.parquet"
    )
    html = write_report(folder)
    for name in ("price.png", "spread_depth.png", "desk.png", "risk_timeline.png"):
        assert (folder / name).read_bytes().startswith(PNG), name
    parser = check_self_contained(html)
    assert len(parser.imgs) == 4
    text = " ".join(parser.text)
    assert "Halts" in text and "Risk events" in text and "kill_switch" in text
    assert halt_spans(halts, OPEN + 600 * S) == [(OPEN + 125 * S, OPEN + 425 * S)]
    assert kill_switch_spans(risk, OPEN + 600 * S) == [(OPEN + 200 * S, OPEN + 500 * S)]
    assert kill_switch_spans(risk.iloc[:2], OPEN + 600 * S) == [(OPEN + 200 * S, OPEN + 600 * S)]


def test_time_weighted_means():
    t = np.array([0, 10, 30])
    centres, mean = time_weighted(t, np.array([1.0, 3.0, np.nan]), end_ns=40, bins=2)
    assert list(centres) == [10, 30]
    assert mean[0] == pytest.approx((10 * 1 + 10 * 3) / 20)
    assert mean[1] == pytest.approx(3.0)  # the NaN segment carries no weight


def test_report_of_a_monte_carlo_folder(tmp_path):
    """A Monte Carlo folder built in process (no Ray): histogram with VaR/ES, events, realism rates."""
    from desksim.montecarlo import Plan, _read_scenario, _rows_table, summarize, validate_distributions

    data, source, _ = _read_scenario("quick")
    dists = validate_distributions({"agents.1.params.rate_per_hour": {"dist": "uniform", "low": 30, "high": 90}})
    plan = Plan(data, source, 3, 12, 4, dists, 60.0)
    from desksim.montecarlo import run_one

    runs = _rows_table(plan, [run_one(plan, i) for i in range(plan.runs)]).to_pandas()
    folder = tmp_path / "mc"
    folder.mkdir()
    runs.to_parquet(folder / "runs.parquet")
    summary = summarize(runs, plan, "quick")
    summary["execution"] = {"workers": 2, "wall_seconds": 1.0, "runs_per_second": 12.0, "nodes": {"n1": 3}}
    (folder / "summary.json").write_text(json.dumps(summary))
    html = write_report(folder)
    for name in ("pnl_hist.png", "events.png", "market.png", "realism.png"):
        assert (folder / name).read_bytes().startswith(PNG), name
    parser = check_self_contained(html)
    text = " ".join(parser.text)
    assert "Value at risk" in text and "Event frequencies" in text and "Realism checks across runs" in text
    assert "Worst runs" in text and "agents.1.params.rate_per_hour" in text
    assert len(parser.imgs) == 4
    # 14.4: 12 runs support no VaR level: flagged, not printed; the note describes riskstats' intervals
    assert text.count("n/a: needs") == 3 and "needs 300 runs (have 12)" in text
    risk_note = text[text.index("Value at risk") : text.index("Plots")]
    assert "percentile" not in risk_note and "order statistics (binomial)" in risk_note
    assert "studentized bootstrap" in risk_note
    assert "intraday drawdown" in text and "Unit: %" in text
    # issue 16: the crash criteria with their bootstrap intervals and the spread of their measures
    crash = text[text.index("Crash criteria across runs") : text.index("Distributions across runs")]
    assert "fall >= 5% within 15 min" in crash and "all five 2010 criteria together" in crash
    assert "fall_15m_pct >= 5" in crash and "/12" in crash and "percentile bootstrap" in crash
    assert "recovered 20m share" in crash
    # issue 16: each real-day target's share of runs in range, in the targets' order, from runs.parquet
    targets = text[text.index("Realism against real days across runs") : text.index("Crash criteria across runs")]
    assert targets.index("kurtosis_1m") < targets.index("acf1_1m") < targets.index("cancels_per_new_order")
    met = int(((runs["acf1_1m"] >= -0.1) & (runs["acf1_1m"] <= 0.1)).sum())
    assert f"{met}/{int(runs['acf1_1m'].notna().sum())}" in targets and "every target" in targets


def test_cli_report_writes_html_and_keeps_text(quick_run, capsys):
    (quick_run / "report.html").unlink(missing_ok=True)
    assert main(["report", str(quick_run)]) == 0
    out = capsys.readouterr().out
    assert f"report: {quick_run / 'report.html'}" in out
    assert "seed 3" in out and "passed" in out  # the text summary and realism table are still printed
    assert (quick_run / "report.html").exists()


def test_cli_report_on_a_folder_without_summary_is_one_line_exit_2(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "summary.json" in err


def plot_records(folder: Path) -> dict:
    return json.loads((folder / SIDECAR).read_text())


@pytest.fixture(scope="module")
def desk_run(tmp_path_factory):
    """A desk behind the OMS and a risk officer, with scenario events: a fat finger, the kill switch
    pulled by hand and released (kill_switch_drill, its first five minutes)."""
    out = tmp_path_factory.mktemp("report") / "desk"
    api.run("kill_switch_drill", seed=1, out=out, duration_s=300)
    return out


def test_desk_run_plots_have_data_in_every_axes(desk_run):
    """14.5: the desk P&L panel was empty (the OMS pnl table has no *pnl* column) and the risk
    timeline of a run with few risk events labelled every tick 00:00:00."""
    write_report(desk_run)
    records = plot_records(desk_run)
    assert {"price.png", "desk.png", "risk_timeline.png"} <= set(records)
    assert plot_problems(records) == []
    position, pnl = records["desk.png"]
    assert "position" in position["ylabel"] and pnl["inside"] > 10 and "P&L" in pnl["ylabel"]
    assert "$" in pnl["ylabel"] or "USD" in pnl["ylabel"] or "currency" in pnl["ylabel"]


def test_scenario_events_are_drawn_on_the_price_and_desk_plots(desk_run):
    """14.5: fired scenario events (here fat fingers, kill switch on and off) appear on no plot."""
    write_report(desk_run)
    records = plot_records(desk_run)
    for name in ("price.png", "desk.png"):
        for ax in records[name]:
            text = " ".join(ax["events"])
            assert "fat_finger" in text and "kill switch on" in text and "kill switch off" in text, (name, ax)


def test_cli_report_of_folders_sharing_a_seed_prints_a_column_each(quick_run, tmp_path, capsys):
    """14.5: the realism table was keyed by seed, so three folders with one seed printed one column."""
    import shutil

    folders = []
    for name in ("a", "b", "c"):
        shutil.copytree(quick_run, tmp_path / name)
        folders.append(str(tmp_path / name))
    assert main(["report", *folders]) == 0
    out = capsys.readouterr().out
    table = out[out.index("statistic") :]
    header = table.splitlines()[0]
    for folder in folders:
        assert folder in header, header


def test_risk_timeline_of_one_event_spans_the_session(quick_run, tmp_path):
    """14.5: one risk event made matplotlib zoom to a microsecond: every tick read "00:00:00"."""
    import shutil

    folder = tmp_path / "one"
    shutil.copytree(quick_run, folder, ignore=shutil.ignore_patterns("*.png", "*.html", SIDECAR))
    pd.DataFrame(
        {
            "time_ns": [OPEN + 90 * S],
            "actor": "CLIENT1",
            "kind": ["max_order_qty"],
            "limit": [10.0],
            "value": [20.0],
            "action": ["reject"],
        }
    ).to_parquet(folder / "risk_events.parquet")
    write_report(folder)
    (ax,) = plot_records(folder)["risk_timeline.png"]
    assert plot_problems({"risk_timeline.png": [ax]}) == []
    assert ax["xticklabels"][0] <= "09:30:00" and len(ax["xticklabels"]) >= 3
