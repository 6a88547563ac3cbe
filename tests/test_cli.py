"""The `desksim` command line: bad input gives one line naming the problem, exit 2, no files."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sim.cli import main

ROOT = Path(__file__).resolve().parents[1]
GOOD = (ROOT / "scenarios" / "quick.yaml").read_text()

BAD_FILES = {
    "unknown_field": (GOOD.replace("seed: 1", "seed: 1\ncolour: blue"), "colour: unknown field"),
    "unknown_nested_field": (GOOD.replace("market_prob: 0.2", "market_prob: 0.2, speed: 3"), "params.speed"),
    "wrong_type": (GOOD.replace("count: 50", "count: fifty"), "agents.1.count"),
    "negative_latency": (GOOD.replace("latency_us: 200", "latency_us: -5"), "network.default.latency_us"),
    "negative_link_latency": (GOOD.replace("latency_us: 5", "latency_us: -1"), "network.links.0.latency_us"),
    "unknown_agent_kind": (GOOD.replace("kind: noise", "kind: whale"), "agents.1"),
    "bad_clock": (GOOD.replace('close: "09:40"', 'close: "25:99"'), "session.close"),
    "close_before_open": (GOOD.replace('close: "09:40"', 'close: "09:00"'), "close must be after open"),
    "not_yaml": ("name: [unclosed\n  - : :", "not valid YAML at line"),
    "not_a_mapping": ("- just\n- a list\n", "must be a YAML mapping"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_scenario_file_one_line_exit_2_nothing_written(case, tmp_path, capsys):
    text, expected = BAD_FILES[case]
    path = tmp_path / f"{case}.yaml"
    path.write_text(text)
    out = tmp_path / "out"
    for argv in (["run", str(path), "--out", str(out)], ["validate", str(path)]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1, err
        assert err.startswith("desksim: error: ") and expected in err, err
        assert str(path) in err
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]


def test_missing_file(tmp_path, capsys):
    assert main(["run", str(tmp_path / "nope.yaml"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "nope.yaml: no such file" in err and err.count("\n") == 1
    assert not (tmp_path / "o").exists()


def test_unknown_bundled_name(capsys):
    assert main(["validate", "no_such_scenario"]) == 2
    assert "not a file and not a bundled scenario" in capsys.readouterr().err


def test_validate_and_scenarios_list(capsys):
    assert main(["validate", str(ROOT / "scenarios" / "baseline.yaml")]) == 0
    assert ": ok (baseline" in capsys.readouterr().out
    assert main(["scenarios"]) == 0
    listed = capsys.readouterr().out
    assert "baseline" in listed and "quick" in listed and "invalid" not in listed


def test_run_subprocess_writes_folder_and_prints_digest(tmp_path):
    out = tmp_path / "r"
    proc = subprocess.run(
        [sys.executable, "-m", "sim.cli", "run", "quick", "--seed", "4", "--duration", "60", "--out", str(out)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert f"digest {summary['digest']}" in proc.stdout
    assert summary["seed"] == 4


def test_negative_seed_and_bad_duration(tmp_path, capsys):
    assert main(["run", "quick", "--seed", "-1", "--out", str(tmp_path / "a")]) == 2
    assert main(["run", "quick", "--duration", "0", "--out", str(tmp_path / "b")]) == 2
    assert not list(tmp_path.iterdir())


def test_reconciliation_break_makes_run_exit_nonzero(tmp_path, capsys, monkeypatch):
    """A break between OMS, risk officer and exchange is listed in summary.json and fails the run."""
    import actors.risk

    real = actors.risk.reconcile

    def planted(oms, fills, risk=None):
        oms = {
            "positions": {a: {s: q + 100 for s, q in b.items()} for a, b in oms["positions"].items()},
            "cash": oms["cash"],
        }
        return real(oms, fills, risk)

    monkeypatch.setattr(actors.risk, "reconcile", planted)
    out = tmp_path / "run"
    assert main(["run", "fix_disconnect", "--duration", "900", "--out", str(out)]) == 3
    err = capsys.readouterr().err
    assert "reconciliation failed: 1 break" in err
    breaks = json.loads((out / "summary.json").read_text())["reconciliation"]["breaks"]
    assert breaks[0]["what"] == "position" and breaks[0]["oms"] == breaks[0]["exchange"] + 100


def test_desk_run_reconciles_cleanly(tmp_path):
    out = tmp_path / "run"
    assert main(["run", "fix_disconnect", "--duration", "900", "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["reconciliation"]["breaks"] == []
    assert summary["desk"]["fills"] > 0 and "var" in summary["risk"]
