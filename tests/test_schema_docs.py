"""docs/scenarios.md is the schema's reference, kept in sync; `desksim schema [TOPIC]` prints it."""

from pathlib import Path

from actors import registry
from actors.background import NoiseParams
from desksim.cli import main
from scenarios import schema
from scenarios.reference import markdown, topics, unit_of

ROOT = Path(__file__).resolve().parents[1]
REGENERATE = ".venv/bin/python -m scenarios.reference > docs/scenarios.md"


def test_docs_scenarios_md_is_generated_from_the_schema():
    assert (ROOT / "docs" / "scenarios.md").read_text(encoding="utf-8") == markdown(), f"regenerate: {REGENERATE}"


def test_reference_covers_every_kind_action_and_parameter():
    text = markdown()
    by_topic = {name: "\n".join(lines) for name, lines in topics().items()}  # built once: 0.3 s a call
    for kind in registry.kinds():
        assert f"## agent kind `{kind}`" in text
        for name in registry.get(kind).params.__dataclass_fields__:
            assert f"| {name} |" in by_topic[kind], (kind, name)
    for section in ("monte_carlo", "distribution", "placement"):
        for key in getattr(
            schema,
            {"monte_carlo": "MonteCarloModel", "distribution": "DistributionModel"}.get(section, "PlacementModel"),
        ).model_fields:
            assert f"| {key} |" in by_topic[section], (section, key)
    for name, action in schema.ACTIONS.items():
        assert by_topic[name].startswith(f"## action `{name}`")
        for key, field in action.params.model_fields.items():
            assert f"| {field.alias or key} |" in by_topic[name], (name, key)
    for name in NoiseParams.__dataclass_fields__:
        assert f"| {name} |" in by_topic["noise"]
    assert "| max_order_qty |" in by_topic["limits"]
    assert "| rate_per_hour | number | `2.0` | per hour |" in text


def test_schema_command_prints_a_topic_or_names_the_valid_ones(capsys):
    assert main(["schema", "fat_finger"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("## action `fat_finger`") and "| qty | integer | required |" in out
    assert main(["schema", "whale"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown topic 'whale'" in err and "noise" in err
    assert main(["schema"]) == 0
    assert capsys.readouterr().out == markdown()


def test_the_example_written_from_the_reference_alone_runs() -> None:
    """docs/examples/my_first.yaml was written from docs/scenarios.md alone (no other scenario read)."""
    from desksim import api

    res = api.run(ROOT / "docs" / "examples" / "my_first.yaml", duration_s=120)
    assert res.summary["trades"] > 0
    assert res.summary["reconciliation"]["breaks"] == []


def test_an_inherited_field_keeps_the_comment_of_the_class_that_declares_it():
    """as_maker's parameters inherit the guards' (GuardParams): their comments come along (they
    were blank before the reference read every class of the MRO)."""
    by_topic = topics()
    for kind in ("as_maker", "ladder_maker"):
        table = "\n".join(by_topic[kind])
        assert "| anchor_max_spread_ticks | integer | `20` | ticks | a book wider than this" in table
        assert "| fair_pause_s | number | `60.0` | seconds | how long a pause lasts |" in table
    assert "| jitter_us | number | `0` | microseconds | plus a uniform draw in [0, jitter_us] |" in markdown()


def test_units_come_from_the_name_and_min_inside_a_name_is_a_minimum():
    assert unit_of("half_life_min") == "minutes" and unit_of("latency_us") == "microseconds"
    assert unit_of("toxic_min_volume") == "" and unit_of("k_min_fills") == ""  # were "minutes"
    assert unit_of("hold_s") == "seconds"
