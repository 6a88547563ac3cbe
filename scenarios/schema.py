"""Scenario files: pydantic models, loading, and errors that name the field path.

A scenario is YAML. Unknown fields are errors; every error names where it is, e.g.
``agents.1.params.rate_per_hour: Input should be greater than or equal to 0``.

``date:`` is the trading date (YYYY-MM-DD; default 2026-01-05, ``fix.clock.DEFAULT_TRADING_DATE``):
simulated time counts from its midnight UTC, and every FIX timestamp of a run (TransactTime,
SendingTime) carries it.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import fnmatch
import math
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from actors import attention, background, makers, program, registry  # noqa: F401  (all but registry register kinds)
from actors.commands import ResumeQuotes, SendOrderNow, StartProgram, WithdrawQuotes
from actors.desk.desk import DeskParams
from actors.exchange.safeguards import SafeguardParams
from actors.messages import FixLinkDown, FixLinkUp, KillSwitch
from actors.risk import RiskLimits
from actors.units import DEFAULT_TICK_SIZE
from actors.world import ActivityParams, FundamentalParams
from fix.clock import DEFAULT_TRADING_DATE
from scenarios.fees import VenueFees, fee_problems
from sim.clock import SECOND, parse_clock


class ScenarioError(ValueError):
    """A scenario that cannot be used; the message is one line and names the problem."""


class Problems(ValueError):
    """Several problems found by one validator, each ``(field path below the validated model, message)``;
    :func:`describe` lists every one with its full path."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{where}: {msg}" if where else msg for where, msg in problems))
        self.problems = problems


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Link(Strict):
    latency_us: float = Field(ge=0)  # one-way base latency
    jitter_us: float = Field(default=0, ge=0)  # plus a uniform draw in [0, jitter_us]


class PairLink(Link):
    from_: str = Field(alias="from")
    to: str


class NetworkModel(Strict):
    default: Link = Link(latency_us=100, jitter_us=20)
    links: list[PairLink] = []
    symmetric: bool = True


class SessionModel(Strict):
    open: str = "09:30"  # clock time HH:MM[:SS]
    close: str = "16:00"  # clock time; close-time rules apply here even in a shortened run

    @field_validator("open", "close")
    @classmethod
    def _time_of_day(cls, value: str) -> str:
        parse_clock(value)
        return value

    @model_validator(mode="after")
    def _ordered(self) -> SessionModel:
        if parse_clock(self.close) <= parse_clock(self.open):
            raise ValueError("close must be after open")
        return self

    @property
    def open_ns(self) -> int:
        return parse_clock(self.open)

    @property
    def close_ns(self) -> int:
        return parse_clock(self.close)


class ExchangeModel(Strict):
    name: str = "exchange"
    location: str = "exchange"
    # LULD bands, price collar, circuit breakers; null turns every safeguard off
    safeguards: SafeguardParams | None = SafeguardParams()


class AgentModel(Strict):
    """One group of agents of one registered kind (``actors.registry``): ``count`` members named
    ``name-0000``, ``name-0001``, ... (just ``name`` when ``count`` is 1). ``params`` is validated
    by the kind's parameter type."""

    name: str = Field(default="", description="actor name prefix; defaults to the kind")
    count: int = Field(default=1, ge=0)
    location: str = "default"
    kind: str  # a registered agent kind (`desksim schema` lists them)
    params: Any = Field(default=None, validate_default=True)  # the kind's parameters

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, value: str) -> str:
        try:
            registry.get(value)
        except registry.UnknownKind as exc:
            raise ValueError(str(exc)) from None
        return value

    @field_validator("params")
    @classmethod
    def _kind_params(cls, value: Any, info: ValidationInfo) -> Any:
        kind = info.data.get("kind")
        if kind is None:  # the kind is missing or unknown: that error is enough
            return value
        model = registry.get(kind).params
        try:
            return _adapter(model).validate_python({} if value is None else value)
        except ValidationError as exc:
            raise Problems(problem_list(exc, model)) from None

    @property
    def agent_kind(self) -> registry.AgentKind:
        return registry.get(self.kind)

    @property
    def actor_class(self) -> type:
        return self.agent_kind.actor_class


_ADAPTERS: dict[type, TypeAdapter[Any]] = {}


def _adapter(model: type) -> TypeAdapter[Any]:
    """The (cached) validator of a kind's parameter type."""
    if model not in _ADAPTERS:
        _ADAPTERS[model] = TypeAdapter(model)
    return _ADAPTERS[model]


# -- timeline -------------------------------------------------------------------------------------
class NoParams(Strict):
    pass


class TimedParams(Strict):
    duration_s: float | None = Field(default=None, gt=0)


class FatFingerParams(Strict):
    side: Literal["B", "S"] = "S"
    qty: int = Field(gt=0)
    price_offset_pct: float | None = None  # None: market order


class LatencyParams(Strict):
    from_: str = Field(alias="from")
    to: str
    factor: float = Field(gt=0)
    duration_s: float | None = Field(default=None, gt=0)


class DisconnectParams(Strict):
    duration_s: float = Field(gt=0)


class HaltParams(Strict):
    duration_s: float = Field(default=300, gt=0)


class KillSwitchParams(Strict):
    account: str = ""
    on: bool = True


class JumpParams(Strict):
    pct: float


class SetIndexParams(Strict):
    """The market index: ``change_pct`` from its previous close, or ``level`` with ``previous_close``."""

    change_pct: float | None = Field(default=None, gt=-100)
    level: float | None = Field(default=None, gt=0)
    previous_close: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _one_way(self) -> SetIndexParams:
        if (self.change_pct is None) == (self.level is None):
            raise ValueError("give exactly one of change_pct, level (with previous_close)")
        if self.level is not None and self.previous_close is None:
            raise ValueError("level needs previous_close (the index's previous close, in index points)")
        if self.change_pct is not None and self.previous_close is not None:
            raise ValueError("previous_close goes with level, not change_pct")
        return self


class VolatilityParams(Strict):
    factor: float = Field(ge=0)
    duration_s: float = Field(gt=0)


@dataclass(frozen=True, slots=True)
class Action:
    """A timeline action: its parameters and the messages the director sends to the actors its
    ``target`` names (empty: the action takes no target; it acts on the exchange, the network or
    the world). Validation checks each target's handler table against ``sends``."""

    params: type[Strict]
    sends: tuple[type, ...]
    doc: str


ACTIONS: dict[str, Action] = {
    "withdraw_makers": Action(
        TimedParams,
        (WithdrawQuotes, ResumeQuotes),
        "makers pull their quotes (for duration_s, else until return_makers)",
    ),
    "return_makers": Action(NoParams, (ResumeQuotes,), "makers quote again"),
    "start_program": Action(NoParams, (StartProgram,), "a program trader starts its program"),
    "fat_finger": Action(FatFingerParams, (SendOrderNow,), "a scripted trader sends one large order at once"),
    "latency": Action(LatencyParams, (), "latency of the links between two locations x factor (for duration_s)"),
    "fix_disconnect": Action(DisconnectParams, (FixLinkDown, FixLinkUp), "FIX sessions drop for duration_s"),
    "halt": Action(HaltParams, (), "the exchange halts trading for duration_s, then reopens by auction"),
    "kill_switch": Action(KillSwitchParams, (KillSwitch,), "the risk officer's kill switch (on or off)"),
    "set_index": Action(SetIndexParams, (), "the market index moves: the market-wide circuit breakers see it"),
    "fundamental_jump": Action(JumpParams, (), "the fundamental value jumps by pct"),
    "volatility": Action(VolatilityParams, (), "the fundamental's volatility x factor for duration_s"),
}
ACTION_PARAMS: dict[str, type[Strict]] = {name: action.params for name, action in ACTIONS.items()}
WORLD_ACTIONS = frozenset({"fundamental_jump", "volatility"})


class WhenModel(Strict):
    """Fires the first time the last trade is ``price_change_pct`` away from the price when the
    condition was armed: at the first trade, or at ``not_before`` (a clock time)."""

    price_change_pct: float
    not_before: str | None = None

    @field_validator("not_before")
    @classmethod
    def _clock(cls, value: str | None) -> str | None:
        if value is not None:
            parse_clock(value)
        return value


class EventModel(Strict):
    """One timeline entry: exactly one of ``at`` (clock time), ``after_s`` or ``when``."""

    at: str | None = None
    after_s: float | None = Field(default=None, ge=0)
    when: WhenModel | None = None
    do: Literal[
        "withdraw_makers",
        "return_makers",
        "start_program",
        "fat_finger",
        "latency",
        "fix_disconnect",
        "halt",
        "kill_switch",
        "set_index",
        "fundamental_jump",
        "volatility",
    ]
    target: str = "*"
    params: dict[str, Any] = {}

    @field_validator("at")
    @classmethod
    def _clock(cls, value: str | None) -> str | None:
        if value is not None:
            parse_clock(value)
        return value

    @model_validator(mode="after")
    def _check(self) -> EventModel:
        given = [name for name in ("at", "after_s", "when") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of at, after_s, when (got {', '.join(given) or 'none'})")
        if self.do in WORLD_ACTIONS and self.when is not None:
            raise ValueError(f"{self.do} changes the fundamental and needs a time (at or after_s), not when")
        model = ACTION_PARAMS[self.do]
        try:
            model.model_validate(self.params)
        except ValidationError as exc:
            valid = ", ".join(field.alias or name for name, field in model.model_fields.items()) or "none"
            problems = []
            for err in exc.errors():
                where = ".".join(str(part) for part in ("params", *err["loc"]))
                if err.get("type") == "extra_forbidden":
                    problems.append((where, f"unknown field for {self.do} (valid: {valid})"))
                else:
                    problems.append((where, f"{err['msg'].removeprefix('Value error, ')} (for {self.do})"))
            raise Problems(problems) from None
        return self

    def typed_params(self) -> Strict:
        return ACTION_PARAMS[self.do].model_validate(self.params)

    def time_ns(self, open_ns: int) -> int | None:
        if self.at is not None:
            return parse_clock(self.at)
        if self.after_s is not None:
            return open_ns + round(self.after_s * SECOND)
        return None


class FixModel(Strict):
    heartbeat_s: int = Field(default=30, gt=0)
    cancel_on_disconnect: bool = True
    comp_id: str = Field(default="CLIENT1", min_length=1)


DESK_LIMITS = RiskLimits(
    max_order_qty=10_000,
    max_order_notional=150_000_000,  # $1.5M at a 0.01 tick
    collar_pct=5.0,
    duplicate_window_ms=50.0,
    max_long=20_000,
    max_short=20_000,
    max_gross_notional=400_000_000,
    max_daily_loss=5_000_000,  # $50,000
    max_messages=50,
    max_orders=20,
    kill_throttle_breaches=20,
)


class RiskModel(Strict):
    """The independent risk officer: pre-trade limits in the order path, drop copies, kill switch."""

    limits: RiskLimits = DESK_LIMITS  # default for every account
    accounts: dict[str, RiskLimits] = {}  # "ACCOUNT", "ACCOUNT/SYMBOL" or "*/SYMBOL" overrides
    var_interval_s: float = Field(default=60.0, gt=0)
    var_lookback_min: int = Field(default=60, gt=1)
    var_alpha: float = Field(default=0.99, gt=0.5, lt=1)
    location: str = "risk"


class DeskModel(Strict):
    """A strategy desk trading through its OMS, which speaks FIX 4.4 to the exchange gateway."""

    name: str = "desk"
    location: str = "institutional"
    params: DeskParams = DeskParams()
    fix: FixModel = FixModel()
    risk: RiskModel | None = RiskModel()  # null: no risk officer (not recommended)


class WorldModel(Strict):
    """Exogenous processes shared by the agents: a fundamental value and market activity."""

    fundamental: FundamentalParams = FundamentalParams()
    activity: ActivityParams | None = None


# -- Monte Carlo and placement sections ------------------------------------------------------------
def _number(value: Any) -> Any:
    """A finite int or float, kept as given (an int stays an int in the plan and ``mc.json``)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"expected a finite number, got {value!r}")
    return value


Number = Annotated[float, PlainValidator(_number)]


class DistributionModel(Strict):
    """One sampled parameter: ``uniform`` (low, high), ``normal`` (mean, sd), ``lognormal`` (mu or
    median, sigma) or ``choice`` (values, weights); the numeric ones take ``min``/``max`` (clip) and
    ``integer``."""

    dist: Literal["uniform", "normal", "lognormal", "choice"]
    low: Number | None = None  # uniform: lower bound
    high: Number | None = None  # uniform: upper bound (>= low)
    mean: Number | None = None  # normal: mean
    sd: Number | None = None  # normal: standard deviation (>= 0)
    mu: Number | None = None  # lognormal: mean of the underlying normal (or give median)
    median: Number | None = None  # lognormal: exp(mu), > 0 (or give mu)
    sigma: Number | None = None  # lognormal: standard deviation of the underlying normal (>= 0)
    values: list[Any] | None = None  # choice: the values, drawn with the weights (default: equally likely)
    weights: list[Number] | None = None  # choice: one weight >= 0 per value, positive sum
    min: Number | None = None  # numeric: clip the draw from below
    max: Number | None = None  # numeric: clip the draw from above
    integer: Annotated[bool, Field(strict=True)] = False  # numeric: round the draw to the nearest integer

    def spec(self) -> dict[str, Any]:
        """The specification as given (the plain mapping the sampler and ``mc.json`` use)."""
        return self.model_dump(exclude_unset=True)


class MonteCarloModel(Strict):
    """``desksim mc``: the scenario's parameters drawn per run from the run's seed (run ``i``'s seed
    derives from the root seed and ``i`` only)."""

    # dotted parameter path (e.g. agents.1.params.rate_per_hour) -> its distribution
    distributions: dict[str, DistributionModel] = {}

    @field_validator("distributions", mode="before")
    @classmethod
    def _none_is_empty(cls, value: Any) -> Any:
        return {} if value is None else value  # `distributions:` with every entry commented out

    @model_validator(mode="after")
    def _rules(self) -> MonteCarloModel:
        from scenarios.distributions import validate_distributions

        validate_distributions(self.specs())  # which fields each dist needs, low <= high, ...
        return self

    def specs(self) -> dict[str, dict[str, Any]]:
        """Parameter path -> distribution specification, as given (``desksim.mc`` samples these)."""
        return {path: model.spec() for path, model in self.distributions.items()}


class PlacementModel(Strict):
    """Ray runtime: which Ray actor process each actor lives in. ``placement: default`` or
    ``placement: core`` is short for ``{preset: ...}``; a mapping without these fields is short for
    ``{groups: mapping}``."""

    # "default": the exchange side together, each maker alone, desk + OMS together, background
    # pools; "core": everything but the background pools together. Used when groups is empty.
    preset: Literal["default", "core"] = "default"
    # actor-name glob -> group, first match wins, every actor must match; "group/N" deals the
    # matching actors round-robin into N processes
    groups: dict[str, str] = {}
    pools: int = Field(default=2, ge=1)  # processes the background pools of a preset are dealt into

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"preset": value}
        if isinstance(value, dict):
            if not value:
                raise ValueError("an empty mapping places nobody (give globs, or default / core)")
            if not set(value) & set(cls.model_fields):
                return {"groups": value}
        return value

    @field_validator("groups")
    @classmethod
    def _named_groups(cls, value: dict[str, str]) -> dict[str, str]:
        for pattern, group in value.items():
            if not group:
                raise ValueError(f"{pattern}: the group must be a non-empty name")
        return value

    def spec(self) -> str | dict[str, str]:
        """The ``sim.runtime.placement`` spec: the glob mapping, else the preset."""
        return dict(self.groups) if self.groups else self.preset


class Scenario(Strict):
    name: str  # shown in summaries and reports
    description: str = ""  # free text; `desksim scenarios` shows its first paragraph
    symbol: str = Field(default="XYZ", min_length=1)  # the one instrument traded
    tick_size: float = Field(default=DEFAULT_TICK_SIZE, gt=0)  # currency per price tick
    reference_price: float = Field(default=100.0, gt=0)  # currency; the opening reference
    seed: int = Field(default=7, ge=0)  # root seed (`--seed` overrides it)
    date: _dt.date = DEFAULT_TRADING_DATE  # trading date of the FIX timestamps (see the module docstring)
    session: SessionModel = SessionModel()
    network: NetworkModel = NetworkModel()
    exchange: ExchangeModel = ExchangeModel()
    # market rules regime (actors/exchange/safeguards.py rules_params): today's LULD, aggressive-side
    # collar and 7/13/20% index breakers, or the rules of 6 May 2010 (no LULD, no collar, 10/20/30%)
    rules: Literal["current", "2010"] = "current"
    world: WorldModel = WorldModel()
    agents: list[AgentModel] = []
    desk: DeskModel | None = None
    # fee schedules per venue (the exchange's name -> maker / taker / auction rates per share, see
    # scenarios/fees.py): accounting only, the matching and the digest never see them; {}: no fees
    fees: dict[str, VenueFees] = {}

    @model_validator(mode="after")
    def _fee_references(self) -> Scenario:
        roster = [name for name, _cls in actor_roster(self)]
        problems = fee_problems(self.fees, [self.exchange.name], roster)
        if problems:
            raise Problems(problems)
        return self

    # Monte Carlo: parameter distributions sampled per run from the run's seed by `desksim mc`
    monte_carlo: MonteCarloModel | None = None
    events: list[EventModel] = []
    # Ray runtime: which Ray actor process each actor lives in: a preset (`default`, `core`), a
    # mapping {actor-name glob: group} or the full section (see `placement` below). `desksim run
    # --placement` overrides it.
    placement: PlacementModel | None = None

    # Simulate only the first N seconds after the open (`desksim run --duration N`). The run is
    # a prefix of the full day: the session, its close and every close-time rule stay as they are.
    stop_after_s: float | None = Field(default=None, gt=0)

    @property
    def reference_ticks(self) -> int:
        return round(self.reference_price / self.tick_size)

    @property
    def end_ns(self) -> int:
        """When the run stops: the close, or ``stop_after_s`` after the open if that is earlier."""
        close_ns = self.session.close_ns
        if self.stop_after_s is None:
            return close_ns
        return min(close_ns, self.session.open_ns + round(self.stop_after_s * SECOND))

    @model_validator(mode="after")
    def _unique_names(self) -> Scenario:
        seen: set[str] = set()
        for agent in self.agents:
            prefix = agent.name or agent.kind
            if prefix in seen:
                raise ValueError(f"two agent groups are named {prefix!r}; give each a distinct name")
            seen.add(prefix)
        return self

    @model_validator(mode="after")
    def _references(self) -> Scenario:
        problems = reference_problems(self)
        if problems:
            raise Problems(problems)
        return self


# -- references between the parts of a scenario ----------------------------------------------------
def member_names(prefix: str, count: int) -> list[str]:
    """Stable actor names of a group: adding members never renames existing ones."""
    return [prefix] if count == 1 else [f"{prefix}-{i:04d}" for i in range(count)]


def actor_roster(scenario: Scenario) -> list[tuple[str, type]]:
    """(name, actor class) of every actor a run of ``scenario`` has, in the order
    ``desksim.assembly.build`` builds them (a test keeps the two in step)."""
    from actors.director import Director
    from actors.exchange.exchange import Exchange

    roster: list[tuple[str, type]] = [(scenario.exchange.name, Exchange)]
    for agent in scenario.agents:
        roster.extend((name, agent.actor_class) for name in member_names(agent.name or agent.kind, agent.count))
    if scenario.desk is not None:
        from actors.desk.desk import StrategyDesk
        from actors.risk import RiskOfficer
        from fix.gateway_actor import FixGateway
        from fix.oms import OMS

        roster.append((scenario.desk.name, StrategyDesk))
        roster.append(("oms", OMS))
        roster.append(("gateway", FixGateway))
        if scenario.desk.risk is not None:
            roster.append(("risk", RiskOfficer))
    if scenario.events:
        roster.append(("director", Director))
    return roster


def actor_classes(scenario: Scenario) -> dict[str, type]:
    """Name -> actor class of every actor of a run of ``scenario``."""
    return dict(actor_roster(scenario))


def locations(scenario: Scenario) -> list[str]:
    """The network locations the scenario's actors are in."""
    found = {scenario.exchange.location, *(agent.location for agent in scenario.agents if agent.count)}
    if scenario.desk is not None:
        found.add(scenario.desk.location)
        if scenario.desk.risk is not None:
            found.add(scenario.desk.risk.location)
    return sorted(found)


def _names(names: list[str], most: int = 4) -> str:
    shown = ", ".join(names[:most])
    return shown + (f" and {len(names) - most:,} more" if len(names) > most else "")


def _handled_by(cls: type, sends: tuple[type, ...]) -> bool:
    table: dict[type, str] = getattr(cls, "handler_names", {})
    return all(message in table for message in sends)


def reference_problems(scenario: Scenario) -> list[tuple[str, str]]:
    """Every broken reference: event targets (they must exist and handle what the action sends),
    locations of links and latency events, event times inside the session, and placement globs
    that leave an actor out."""
    problems: list[tuple[str, str]] = []
    listed = actor_roster(scenario)
    roster = dict(listed)
    names = list(roster)
    if len(listed) != len(roster):
        counts: dict[str, int] = {}
        for name, _cls in listed:
            counts[name] = counts.get(name, 0) + 1
        twice = sorted(name for name, count in counts.items() if count > 1)
        problems.append(("", f"two actors would be named {_names(twice)}; rename an agent group or the desk"))
    if scenario.placement is not None and scenario.placement.groups:
        globs = list(scenario.placement.groups)
        unmatched = [name for name in names if not any(fnmatch.fnmatchcase(name, glob) for glob in globs)]
        if unmatched:
            problems.append(
                ("placement.groups", f'{_names(unmatched)} match no pattern (every actor must; end with "*": group)')
            )
    places = locations(scenario)
    known = ", ".join(places)
    for i, link in enumerate(scenario.network.links):
        for key, value in (("from", link.from_), ("to", link.to)):
            if value not in places:
                problems.append((f"network.links.{i}.{key}", f"unknown location {value!r} (locations: {known})"))
    open_ns, close_ns = scenario.session.open_ns, scenario.session.close_ns
    session = f"{scenario.session.open}-{scenario.session.close}"
    for i, event in enumerate(scenario.events):
        where = f"events.{i}"
        at_ns = event.time_ns(open_ns)
        if at_ns is not None and not open_ns <= at_ns < close_ns:
            field = "at" if event.at is not None else "after_s"
            value = event.at if event.at is not None else f"{event.after_s} s after the open"
            problems.append((f"{where}.{field}", f"{value} is outside the session ({session})"))
        if event.when is not None and event.when.not_before is not None:
            armed = parse_clock(event.when.not_before)
            if not open_ns <= armed < close_ns:
                problems.append(
                    (f"{where}.when.not_before", f"{event.when.not_before} is outside the session ({session})")
                )
        action = ACTIONS[event.do]
        if event.do == "latency":
            params = event.typed_params()
            for key in ("from", "to"):
                value = getattr(params, "from_" if key == "from" else key)
                if value not in places:
                    problems.append((f"{where}.params.{key}", f"unknown location {value!r} (locations: {known})"))
        if not action.sends:
            if "target" in event.model_fields_set:
                problems.append((f"{where}.target", f"{event.do} takes no target"))
            continue
        able = [name for name, cls in roster.items() if _handled_by(cls, action.sends)]
        message = " and ".join(m.__name__ for m in action.sends)
        hint = f"actors that handle {message}: {_names(able) if able else 'none in this scenario'}"
        if "target" not in event.model_fields_set:
            problems.append((f"{where}.target", f"missing: {event.do} sends {message} to its target ({hint})"))
            continue
        for glob in (g.strip() for g in event.target.split(",")):
            matched = [name for name in names if fnmatch.fnmatchcase(name, glob)]
            if not matched:
                problems.append((f"{where}.target", f"{glob!r} matches no actor ({hint})"))
                continue
            unable = [name for name in matched if not _handled_by(roster[name], action.sends)]
            if unable:
                kinds = sorted({roster[name].__name__ for name in unable})
                problems.append(
                    (
                        f"{where}.target",
                        f"{glob!r} matches {_names(unable)} ({', '.join(kinds)}), which cannot handle "
                        f"{message} sent by {event.do} ({hint})",
                    )
                )
    return problems


def _where(loc: tuple[Any, ...]) -> str:
    """Dotted field path ("" at the top level)."""
    return ".".join(str(p) for p in loc)


def problem_list(error: ValidationError, root: Any = None) -> list[tuple[str, str]]:
    """Every problem of ``error`` as ``(dotted path, message)``; ``root`` is the validated type
    (default :class:`Scenario`), whose fields an "unknown field" message lists."""
    problems: list[tuple[str, str]] = []
    for err in error.errors():
        where = _where(err["loc"])
        cause = (err.get("ctx") or {}).get("error")
        if isinstance(cause, Problems):
            for sub, msg in cause.problems:
                problems.append((".".join(part for part in (where, sub) if part), msg))
        elif err.get("type") in ("extra_forbidden", "unexpected_keyword_argument"):
            valid = _valid_fields(err["loc"][:-1], Scenario if root is None else root)
            problems.append((where, "unknown field" + (f" (valid: {', '.join(valid)})" if valid else "")))
        else:
            problems.append((where, err["msg"].removeprefix("Value error, ")))
    return problems


def describe(error: ValidationError) -> str:
    """Every validation problem, on one line: ``path: message; path: message``."""
    problems = [f"{where or '(top level)'}: {msg}" for where, msg in problem_list(error)]
    if len(problems) == 1:
        return problems[0]
    return f"{len(problems)} problems: " + "; ".join(problems)


def _unwrap(tp: Any) -> list[Any]:
    """The concrete types behind Annotated, Optional and unions."""
    if typing.get_origin(tp) is Annotated:
        return _unwrap(typing.get_args(tp)[0])
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return [t for arg in typing.get_args(tp) for t in _unwrap(arg) if t is not type(None)]
    return [tp]


def _field_types(tp: Any) -> dict[str, Any]:
    """Field name (and alias) -> annotation of a pydantic model or a dataclass; {} otherwise."""
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        out = {name: field.annotation for name, field in tp.model_fields.items()}
        out.update({field.alias: field.annotation for field in tp.model_fields.values() if field.alias})
        return out
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        hints = typing.get_type_hints(tp)
        return {f.name: hints.get(f.name, Any) for f in dataclasses.fields(tp)}
    return {}


def _valid_fields(loc: tuple[Any, ...], root: Any) -> list[str]:
    """The field names accepted at ``loc`` (a pydantic error location) of a ``root`` (a scenario)."""
    candidates: list[Any] = [root]
    for part in loc:
        following: list[Any] = []
        for tp in (t for c in candidates for t in _unwrap(c)):
            origin, args = typing.get_origin(tp), typing.get_args(tp)
            if isinstance(part, int) and origin in (list, tuple) and args:
                following.append(args[0])
            elif origin is dict and len(args) == 2:
                following.append(args[1])
            elif isinstance(part, str):
                fields = _field_types(tp)
                kind = fields.get("kind")
                if kind is not None and part not in fields and typing.get_origin(kind) is Literal:
                    if part in typing.get_args(kind):
                        following.append(tp)  # the discriminator tag pydantic puts in the path
                    continue
                field = fields.get(part)
                if field is not None:
                    following.append(field)
        candidates = following
    for tp in (t for c in candidates for t in _unwrap(c)):
        fields = _field_types(tp)
        if fields:
            if isinstance(tp, type) and issubclass(tp, BaseModel):
                return [field.alias or name for name, field in tp.model_fields.items()]
            return list(fields)
    return []


#: top-level keys with this prefix are ignored (anchors for ``<<:`` merges live there)
EXTENSION_PREFIX = "x-"


def parse(data: Any, source: str = "<scenario>") -> Scenario:
    if not isinstance(data, dict):
        raise ScenarioError(f"{source}: a scenario must be a YAML mapping, got {type(data).__name__}")
    # top-level keys that start with "x-" are the file's own (a home for YAML anchors that several
    # agents merge with ``<<: *name``, as in Compose files): not part of the scenario
    data = {k: v for k, v in data.items() if not (isinstance(k, str) and k.startswith(EXTENSION_PREFIX))}
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(f"{source}: {describe(exc)}") from None
    except RecursionError:
        raise ScenarioError(f"{source}: nested too deeply") from None


def resolve(name_or_path: str | Path) -> Path:
    """A path to a YAML file, or the name of a bundled scenario."""
    from scenarios import bundled

    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists() or "/" in str(name_or_path):
        if not path.is_file():
            raise ScenarioError(f"{path}: no such file")
        return path
    found = bundled().get(str(name_or_path))
    if found is None:
        names = ", ".join(bundled()) or "none"
        raise ScenarioError(f"{name_or_path}: not a file and not a bundled scenario (bundled: {names})")
    return found


def load(name_or_path: str | Path, overrides: dict[str, Any] | None = None) -> Scenario:
    """Load and validate a scenario file (or bundled name), applying dotted-key overrides."""
    path = resolve(name_or_path)
    data = read_yaml(path)
    if overrides and isinstance(data, dict):
        for dotted, value in overrides.items():
            set_dotted(data, dotted, value)
    return parse(data, str(path))


# Limits on a scenario file, checked before anything is built from it. Bundled scenarios are a
# few kB and at most 6 levels deep; the limits stop a pathological file (a YAML "billion laughs"
# alias bomb, thousands of nested brackets, a multi-megabyte file) with one line instead of a
# RecursionError, an exhausted memory or minutes of parsing.
MAX_FILE_BYTES = 1_000_000
MAX_DEPTH = 32  # nested mappings/sequences, counted after expanding aliases
MAX_ALIASES = 100
MAX_NODES = 100_000  # scalars + collections, counted after expanding aliases


def read_yaml(path: Path) -> Any:
    """The YAML document in ``path``, parsed with the safe loader within the limits above."""
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
        text = raw.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"{path}: cannot read: {exc}") from None
    if len(raw) > MAX_FILE_BYTES:
        raise ScenarioError(f"{path}: file larger than {MAX_FILE_BYTES:,} bytes; a scenario file is a few kB")
    try:
        problem = _structure_problem(text)
        if problem is not None:
            raise ScenarioError(f"{path}: {problem}")
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ScenarioError(f"{path}: not valid YAML{where}: {problem}") from None
    except RecursionError:  # the limits make this unreachable; never let it become a traceback
        raise ScenarioError(f"{path}: YAML nested too deeply") from None


def _structure_problem(text: str) -> str | None:
    """Depth, alias count and expanded size of the YAML in ``text``, from the parser's event stream
    (iterative, so a deep file cannot exhaust the stack): the first limit it breaks, or None."""
    anchors: dict[str, tuple[int, int]] = {}  # anchor -> (expanded nodes, height)
    stack: list[list[Any]] = []  # open collections: [anchor, expanded nodes, height of children]
    aliases = nodes = 0

    def close(anchor: str | None, size: int, height: int) -> None:
        if anchor:
            anchors[anchor] = (size, height)
        if stack:
            stack[-1][1] += size
            stack[-1][2] = max(stack[-1][2], height)

    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        line = f" (line {event.start_mark.line + 1})" if event.start_mark is not None else ""
        if isinstance(event, yaml.CollectionStartEvent):
            stack.append([event.anchor, 1, 0])
            nodes += 1
            if len(stack) > MAX_DEPTH:
                return f"YAML nested deeper than {MAX_DEPTH} levels{line}"
        elif isinstance(event, yaml.CollectionEndEvent):
            anchor, size, height = stack.pop()
            close(anchor, size, height + 1)
        elif isinstance(event, yaml.ScalarEvent):
            nodes += 1
            close(event.anchor, 1, 0)
        elif isinstance(event, yaml.AliasEvent):
            aliases += 1
            if aliases > MAX_ALIASES:
                return f"more than {MAX_ALIASES} YAML aliases (*name){line}"
            size, height = anchors.get(event.anchor or "", (1, 0))
            nodes += size
            if len(stack) + height > MAX_DEPTH:
                return f"YAML nested deeper than {MAX_DEPTH} levels once aliases are expanded{line}"
            close(None, size, height)
        if nodes > MAX_NODES:
            return f"YAML expands to more than {MAX_NODES:,} values (aliases included){line}"
    return None


def set_dotted(data: dict[str, Any], dotted: str, value: Any) -> None:
    node: Any = data
    parts = dotted.split(".")
    for part in parts[:-1]:
        if isinstance(node, list):
            node = node[int(part)]
        else:
            node = node.setdefault(part, {})
    if isinstance(node, list):
        node[int(parts[-1])] = value
    else:
        node[parts[-1]] = value
