"""The `desksim` command line: bad input gives one line naming the problem, exit 2, no files."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from desksim.cli import main

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
        [sys.executable, "-m", "desksim.cli", "run", "quick", "--seed", "4", "--duration", "60", "--out", str(out)],
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


# -- small things a user trips on (issue 14 item 7) -----------------------------------------------
def test_run_refuses_an_existing_out_folder_unless_force(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "keep.txt").write_text("a previous run")
    argv = ["run", "quick", "--duration", "5", "--no-report", "--out", str(out)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "already exists" in err and "--force" in err
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]
    assert main([*argv, "--force"]) == 0
    assert (out / "summary.json").exists() and not (out / "keep.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_ctrl_c_prints_one_line_and_what_to_run(tmp_path, capsys, monkeypatch):
    import desksim.api

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(desksim.api, "run", interrupted)
    assert main(["run", "quick", "--out", str(tmp_path / "r")]) == 130
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("desksim: interrupted; ") and "again" in err
    monkeypatch.setattr("desksim.cli.build_parser", _parser_with(interrupted))  # any other command
    assert main(["validate", "quick"]) == 130
    err = capsys.readouterr().err
    assert err == "desksim: interrupted; nothing was written\n"
    assert not list(tmp_path.iterdir())


def _parser_with(func):
    from desksim.cli import build_parser

    def build():
        parser = build_parser()
        sub = next(a for a in parser._actions if a.dest == "command")
        sub.choices["validate"].set_defaults(func=func)
        return parser

    return build


def test_mc_warns_when_workers_exceed_the_cpus(tmp_path, capsys, monkeypatch):
    import desksim.montecarlo

    def stop(*args, **kwargs):
        raise ValueError("stopped before running")

    monkeypatch.setattr(desksim.montecarlo, "monte_carlo", stop)
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    main(["mc", "quick", "--runs", "2", "--workers", "8", "--out", str(tmp_path / "m")])
    assert "warning: --workers 8 is more than this machine's 2 CPUs" in capsys.readouterr().err
    main(["mc", "quick", "--runs", "2", "--workers", "2", "--out", str(tmp_path / "m")])
    assert "warning" not in capsys.readouterr().err


def test_scenarios_list_cuts_descriptions_at_a_word_boundary(capsys, monkeypatch):
    from scenarios import bundled
    from scenarios.schema import load

    monkeypatch.setenv("COLUMNS", "80")
    assert main(["scenarios"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(bundled())
    cut = 0
    pad = max([17, *(len(name) for name in bundled())])  # the name column fits the longest name
    for line, name in zip(lines, bundled(), strict=True):
        assert len(line) <= 80, line
        shown = line[pad + 1 :]
        paragraph = " ".join(load(name).description.strip().split("\n\n")[0].split())
        if shown.endswith(" …"):
            cut += 1
            kept = shown.removesuffix(" …")
            assert paragraph.startswith(kept) and paragraph[len(kept)] == " ", (name, shown)
        else:
            assert shown == paragraph, (name, shown)
    assert cut > 0
