"""Pathological scenario files (deep nesting, alias bombs, huge files): one line, exit 2, nothing written."""

import pytest

from desksim import api
from desksim.assembly import build
from desksim.cli import main
from scenarios import bundled
from scenarios.schema import MAX_DEPTH, MAX_FILE_BYTES, ScenarioError, _structure_problem, actor_roster, load
from sim.record import Recorder


def _alias_bomb(levels: int = 9) -> str:
    """The classic "billion laughs": each level lists the previous one nine times (9**10 strings)."""
    lines = ["name: bomb", 'description: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines.append("monte_carlo:")
    lines.append("  distributions:")
    for i in range(1, levels + 1):
        lines.append(f"    p{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


PATHOLOGICAL = {
    # 50,000 nested flow sequences: PyYAML's composer recursed into a RecursionError traceback
    "deep_flow": ("name: deep\nagents: " + "[" * 50_000 + "]" * 50_000 + "\n", "nested deeper than"),
    # nested block mappings, shallower than the recursion limit but past any real scenario
    "deep_block": ("name: deep\n" + "".join(" " * i + f"k{i}:\n" for i in range(200)) + " " * 200 + "v: 1\n", "nested"),
    "alias_bomb": (_alias_bomb(), "YAML expands to more than"),
    "many_aliases": ("name: x\nv: &v 1\nl: [" + ", ".join(["*v"] * 500) + "]\n", "YAML aliases"),
    "deep_through_aliases": (
        "name: x\nd: &d " + "[" * 20 + "1" + "]" * 20 + "\ne: " + "[" * 20 + "*d" + "]" * 20 + "\n",
        "once aliases are expanded",
    ),
    "huge": ("name: big\ndescription: " + "x" * (MAX_FILE_BYTES + 10) + "\n", "file larger than"),
}


@pytest.mark.parametrize("case", sorted(PATHOLOGICAL))
def test_pathological_file_one_line_exit_2_nothing_written(case, tmp_path, capsys):
    text, expected = PATHOLOGICAL[case]
    path = tmp_path / f"{case}.yaml"
    path.write_text(text)
    out = tmp_path / "out"
    for argv in (["run", str(path), "--out", str(out), "--no-report"], ["validate", str(path)]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1, err[:500]
        assert err.startswith(f"desksim: error: {path}: ") and expected in err, err[:500]
    assert main(["mc", str(path), "--runs", "2", "--out", str(out), "--quiet"]) == 2
    assert expected in capsys.readouterr().err
    with pytest.raises(ScenarioError, match=expected):
        api.run(path, out=out)
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]


def test_limits_leave_room_for_real_scenarios(tmp_path, capsys):
    """Nesting right at the depth limit and a few aliases are fine; one level more is not."""
    inside = MAX_DEPTH - 1  # the top-level mapping is the first level
    assert _structure_problem("x: " + "[" * inside + "]" * inside) is None
    assert "nested deeper" in str(_structure_problem("x: " + "[" * (inside + 1) + "]" * (inside + 1)))
    path = tmp_path / "aliases.yaml"
    path.write_text("name: ok\nseed: &s 3\nmonte_carlo: {distributions: {seed: {dist: choice, values: [*s, *s]}}}\n")
    assert main(["validate", str(path)]) == 0, capsys.readouterr().err


@pytest.mark.parametrize("name", sorted(bundled()))
def test_every_bundled_scenario_loads_and_assembles(name):
    """Every agent kind of every bundled scenario is registered, its typed sections parse, and the
    assembly builds exactly the roster the schema validated against."""
    scenario = load(name)
    built = build(scenario, Recorder(), scenario.seed)
    assert [(a.name, type(a)) for a in built.actors] == actor_roster(scenario)
