"""The scenario reference, generated from the schema: every section, agent kind, event action,
desk and risk setting with its type, default, unit and the comment beside it in the source.

``docs/scenarios.md`` is :func:`markdown` (a test keeps it in sync); ``desksim schema [KIND]``
prints one topic (:func:`topics`).
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import re
import typing
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from actors import registry
from scenarios import schema
from scenarios.fees import FeeOverride, VenueFees

# Units read from a field name's suffix (the project's naming rule: the unit is in the name).
UNITS = (
    ("_pct", "percent"),
    ("_bp", "basis points"),
    ("_ticks", "ticks"),
    ("_ms", "milliseconds"),
    ("_us", "microseconds"),
    ("_ns", "nanoseconds"),
    ("_s", "seconds"),
    ("_min", "minutes"),
    ("_per_hour", "per hour"),
    ("_per_share", "currency per share"),
    ("_lots", "lots"),
    ("_qty", "shares"),
    ("_notional", "ticks x shares"),
)


def unit_of(name: str) -> str:
    """The unit a field's name ends in, or carries before a qualifier (``latency_us_sd``); "min"
    inside a name is a minimum (``toxic_min_volume``), never minutes."""
    for suffix, unit in UNITS:
        if name.endswith(suffix) or (suffix != "_min" and f"{suffix}_" in name):
            return unit
    return ""


def _type_name(tp: Any) -> str:
    if tp is None or tp is type(None):
        return "null"
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Annotated:
        return _type_name(args[0])
    if origin is typing.Literal:
        return " | ".join(str(a) for a in args)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        return " | ".join(_type_name(a) for a in args)
    if origin in (list, tuple):
        return f"list of {_type_name(args[0])}" if args else "list"
    if origin is dict:
        return f"mapping of {_type_name(args[0])} to {_type_name(args[1])}" if args else "mapping"
    if isinstance(tp, type):
        return {"str": "text", "int": "integer", "float": "number", "Decimal": "number", "bool": "true | false"}.get(
            tp.__name__, tp.__name__
        )
    return str(tp).replace("typing.", "")


@functools.cache  # a class's source does not change within a process; parsing it is most of the cost
def _comments(cls: type) -> dict[str, str]:
    """Field name -> the comment beside (or just above) it in the class's source."""
    try:
        lines = inspect.getsource(cls).splitlines()
    except (OSError, TypeError):
        return {}
    out: dict[str, str] = {}
    above: list[str] = []
    for line in lines[1:]:
        stripped = line.strip()
        if stripped.startswith("#"):
            above.append(stripped.lstrip("# "))
            continue
        match = re.match(r"^\s{4}(\w+)\s*:[^#]*?(?:#\s*(.*))?$", line)
        if match and not stripped.startswith(("def ", "@")):
            text = " ".join([*above, match.group(2) or ""]).strip()
            if text:
                out.setdefault(match.group(1), text)
        above = []
    return out


def _default(value: Any) -> str:
    if value is PydanticUndefined or value is dataclasses.MISSING:
        return "required"
    if isinstance(value, BaseModel) or dataclasses.is_dataclass(value):
        return "(see below)"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (list, dict)) and not value:
        return "[]" if isinstance(value, list) else "{}"
    return f"`{value}`"


_FOREIGN = frozenset({"builtins", "pydantic", "typing", "abc"})  # bases with no scenario fields to read


def fields(cls: type) -> list[tuple[str, str, str, str, str]]:
    """(name, type, default, unit, description) of each field of a pydantic model or dataclass."""
    notes: dict[str, str] = {}
    for klass in reversed(cls.__mro__):  # an inherited field keeps the comment of the class that declares it
        if klass.__module__.partition(".")[0] not in _FOREIGN:
            notes.update(_comments(klass))
    rows = []
    if isinstance(cls, type) and issubclass(cls, BaseModel):
        for name, field in cls.model_fields.items():
            if name == "kind":
                continue
            key = field.alias or name
            default = field.default_factory() if field.default_factory is not None else field.default  # type: ignore[call-arg]
            text = field.description or notes.get(name, "")
            rows.append((key, _type_name(field.annotation), _default(default), unit_of(key), text))
    elif dataclasses.is_dataclass(cls):
        hints = typing.get_type_hints(cls, include_extras=True)
        for f in dataclasses.fields(cls):
            default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
            note = notes.get(f.name, "")
            rows.append((f.name, _type_name(hints.get(f.name)), _default(default), unit_of(f.name), note))
    return rows


def _table(cls: type) -> list[str]:
    rows = fields(cls)
    if not rows:
        return ["(no parameters)", ""]
    out = ["| field | type | default | unit | meaning |", "| --- | --- | --- | --- | --- |"]
    for row in rows:
        out.append("| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |")
    return [*out, ""]


def topics() -> dict[str, list[str]]:
    """Topic name -> its Markdown lines: sections, agent kinds, actions, desk and risk."""
    out: dict[str, list[str]] = {}
    out["scenario"] = [
        "## scenario (top level)",
        "",
        "A scenario is one YAML mapping. Unknown fields are errors; every error names its field path.",
        "Top-level keys that start with `x-` are the file's own and ignored: a home for YAML anchors",
        "that several agents merge (`x-guards: &guards {...}`, then `params: {<<: *guards, size: 300}`;",
        "see scenarios/flash_crash.yaml).",
        "",
        *_table(schema.Scenario),
    ]
    for key, cls, title in (
        ("session", schema.SessionModel, "session: trading hours (clock times HH:MM[:SS])"),
        ("network", schema.NetworkModel, "network: latencies between locations"),
        ("link", schema.PairLink, "network.links[]: one pair of locations"),
        ("exchange", schema.ExchangeModel, "exchange"),
        ("safeguards", schema.SafeguardParams, "exchange.safeguards: LULD bands, collar, circuit breakers"),
        ("world", schema.WorldModel, "world: exogenous processes"),
        ("fundamental", schema.FundamentalParams, "world.fundamental: the fundamental value"),
        ("activity", schema.ActivityParams, "world.activity: market activity (null: constant)"),
        ("monte_carlo", schema.MonteCarloModel, "monte_carlo: parameters drawn per run by `desksim mc`"),
        ("distribution", schema.DistributionModel, "monte_carlo.distributions.PATH: one sampled parameter"),
        ("placement", schema.PlacementModel, "placement: actors to Ray processes (`--runtime ray`)"),
    ):
        out[key] = [f"## {title}", "", *_table(cls)]
    common = [
        "Every agent group has `kind`, `name` (actor name prefix; default the kind), `count` (default 1;",
        "members are named `name-0000`, `name-0001`, ...), `location` (default `default`) and `params`.",
        "",
    ]
    for name, kind in registry.kinds().items():  # every registered kind (actors/registry.py)
        actor = kind.actor_class.__name__
        where = f"Ray placement role: `{kind.placement_role}`."
        if kind.world:
            where += " Uses the world's " + " and ".join(f"`{process}`" for process in kind.world) + "."
        out[name] = [f"## agent kind `{name}` ({actor})", "", kind.doc, "", where, "", *common]
        out[name] += ["`params`:", "", *_table(kind.params)]
    out["events"] = [
        "## events[]: the timeline",
        "",
        "Each event has exactly one of `at` (clock time), `after_s` (seconds after the open) or `when`",
        "(`{price_change_pct, not_before}`: the first time the last trade has moved that many percent),",
        "`do` (the action), `target` (actor-name globs, comma-separated; required by the actions that send",
        "a message, and every actor it names must handle that message) and `params`. Times must lie",
        "inside the session.",
        "",
        "| action | sends to its target | what it does |",
        "| --- | --- | --- |",
        *(
            f"| `{name}` | {', '.join(m.__name__ for m in a.sends) or '(no target)'} | {a.doc} |"
            for name, a in schema.ACTIONS.items()
        ),
        "",
    ]
    for name, action in schema.ACTIONS.items():
        out[name] = [f"## action `{name}`", "", action.doc + ".", "", "`params`:", "", *_table(action.params)]
    out["desk"] = ["## desk: a strategy desk, its OMS (FIX 4.4) and the risk officer", "", *_table(schema.DeskModel)]
    out["desk.params"] = ["## desk.params", "", *_table(schema.DeskParams)]
    out["fix"] = ["## desk.fix", "", *_table(schema.FixModel)]
    out["risk"] = ["## desk.risk: the independent risk officer (null: none)", "", *_table(schema.RiskModel)]
    out["limits"] = ["## desk.risk.limits (and each entry of desk.risk.accounts)", "", *_table(schema.RiskLimits)]
    out["fees"] = [
        "## fees: maker-taker fee schedules per venue (venue = the exchange's name)",
        "",
        "`fees: {exchange: {maker_per_share: -0.0020, taker_per_share: 0.0030}}`: rates in currency per",
        "share, positive = the participant pays, negative = a rebate (an inverted venue: the maker pays, the",
        "taker is paid); whole multiples of 0.000001. Accounting only: the matching and the digest never see",
        "them. Every P&L, implementation shortfall and maker statistic of the summary is also shown net of",
        "them (docs/summary.md). No `fees:` section: no fees.",
        "",
        *_table(VenueFees),
    ]
    out["fees.overrides"] = ["## fees.VENUE.overrides: rates for the actors a glob matches", "", *_table(FeeOverride)]
    return out


def markdown() -> str:
    """The whole reference (``docs/scenarios.md``)."""
    lines = [
        "# Scenario reference",
        "",
        "Generated from the schema by `scenarios/reference.py`; `desksim schema [TOPIC]` prints one",
        "part. Do not edit by hand: `tests/test_schema_docs.py` fails when this file and the schema",
        "differ (regenerate with `.venv/bin/python -m scenarios.reference > docs/scenarios.md`).",
        "Units follow the field names: `_s` seconds, `_ms` milliseconds, `_us` microseconds, `_pct`",
        "percent, `_ticks` price ticks; prices in the scenario's top level are in currency.",
        "",
        "Topics: " + ", ".join(f"`{t}`" for t in topics()),
        "",
    ]
    for body in topics().values():
        lines += body
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":
    print(markdown(), end="")
