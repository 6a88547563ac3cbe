"""Scenario files: pydantic models, loading, and errors that name the field path.

A scenario is YAML. Unknown fields are errors; every error names where it is, e.g.
``agents.1.params.rate_per_hour: Input should be greater than or equal to 0``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from actors.background import MomentumParams, NoiseParams, ValueParams
from actors.desk.desk import DeskParams
from actors.exchange.safeguards import SafeguardParams
from actors.makers import ASParams, LadderParams
from actors.program import ProgramParams, ScriptedParams
from actors.risk import RiskLimits
from actors.world import ActivityParams, FundamentalParams
from sim.clock import parse_clock


class ScenarioError(ValueError):
    """A scenario that cannot be used; the message is one line and names the problem."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Link(Strict):
    latency_us: float = Field(ge=0)
    jitter_us: float = Field(default=0, ge=0)


class PairLink(Link):
    from_: str = Field(alias="from")
    to: str


class NetworkModel(Strict):
    default: Link = Link(latency_us=100, jitter_us=20)
    links: list[PairLink] = []
    symmetric: bool = True


class SessionModel(Strict):
    open: str = "09:30"
    close: str = "16:00"

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


class AgentBase(Strict):
    name: str = Field(default="", description="actor name prefix; defaults to the kind")
    count: int = Field(default=1, ge=0)
    location: str = "default"


class NoiseAgent(AgentBase):
    kind: Literal["noise"]
    params: NoiseParams = NoiseParams()


class LadderMakerAgent(AgentBase):
    kind: Literal["ladder_maker"]
    params: LadderParams = LadderParams()


class ValueAgent(AgentBase):
    kind: Literal["value"]
    params: ValueParams = ValueParams()


class MomentumAgent(AgentBase):
    kind: Literal["momentum"]
    params: MomentumParams = MomentumParams()


class ASMakerAgent(AgentBase):
    kind: Literal["as_maker"]
    params: ASParams = ASParams()


class ProgramAgent(AgentBase):
    kind: Literal["program"]
    params: ProgramParams = ProgramParams()


class ScriptedAgent(AgentBase):
    kind: Literal["scripted"]
    params: ScriptedParams = ScriptedParams()


Agent = Annotated[
    NoiseAgent | ValueAgent | MomentumAgent | LadderMakerAgent | ASMakerAgent | ProgramAgent | ScriptedAgent,
    Field(discriminator="kind"),
]
AGENT_KINDS = frozenset({"noise", "value", "momentum", "ladder_maker", "as_maker", "program", "scripted"})


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


class VolatilityParams(Strict):
    factor: float = Field(ge=0)
    duration_s: float = Field(gt=0)


ACTION_PARAMS: dict[str, type[Strict]] = {
    "withdraw_makers": TimedParams,
    "return_makers": NoParams,
    "start_program": NoParams,
    "fat_finger": FatFingerParams,
    "latency": LatencyParams,
    "fix_disconnect": DisconnectParams,
    "halt": HaltParams,
    "kill_switch": KillSwitchParams,
    "fundamental_jump": JumpParams,
    "volatility": VolatilityParams,
}
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
        try:
            ACTION_PARAMS[self.do].model_validate(self.params)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in ("params", *first["loc"]))
            problem = "unknown field" if first.get("type") == "extra_forbidden" else first["msg"]
            raise ValueError(f"{where}: {problem} (for {self.do})") from None
        return self

    def typed_params(self) -> Strict:
        return ACTION_PARAMS[self.do].model_validate(self.params)

    def time_ns(self, open_ns: int) -> int | None:
        if self.at is not None:
            return parse_clock(self.at)
        if self.after_s is not None:
            return open_ns + round(self.after_s * 1e9)
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


class Scenario(Strict):
    name: str
    description: str = ""
    symbol: str = Field(default="XYZ", min_length=1)
    tick_size: float = Field(default=0.01, gt=0)
    reference_price: float = Field(default=100.0, gt=0)
    seed: int = Field(default=7, ge=0)
    session: SessionModel = SessionModel()
    network: NetworkModel = NetworkModel()
    exchange: ExchangeModel = ExchangeModel()
    world: WorldModel = WorldModel()
    agents: list[Agent] = []
    desk: DeskModel | None = None
    # Monte Carlo: {distributions: {dotted.path: {dist: uniform|normal|lognormal|choice, ...}}},
    # sampled per run from the run's seed by `desksim mc` (see sim/montecarlo.py)
    monte_carlo: dict[str, Any] | None = None

    @field_validator("monte_carlo")
    @classmethod
    def _distributions(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is None:
            return None
        extra = sorted(set(value) - {"distributions"})
        if extra:
            raise ValueError(f"monte_carlo.{extra[0]}: unknown field (expected distributions)")
        from sim.montecarlo import validate_distributions

        validate_distributions(value.get("distributions"))
        return value

    events: list[EventModel] = []
    # Ray runtime: which Ray actor process each actor lives in. "default" (exchange side, each
    # maker, desk + OMS, background pools), "core" (everything but the background pools
    # together) or {actor-name glob: group}, first match wins; "group/N" deals the matching
    # actors round-robin into N processes. `desksim run --placement` overrides it.
    placement: Literal["default", "core"] | dict[str, str] | None = None

    @field_validator("placement")
    @classmethod
    def _placement(cls, value: str | dict[str, str] | None) -> str | dict[str, str] | None:
        if isinstance(value, dict):
            if not value:
                raise ValueError("an empty mapping places nobody (give globs, or default / core)")
            for pattern, group in value.items():
                if not group or not isinstance(group, str):
                    raise ValueError(f"{pattern}: the group must be a non-empty name")
        return value

    @property
    def reference_ticks(self) -> int:
        return round(self.reference_price / self.tick_size)

    @model_validator(mode="after")
    def _unique_names(self) -> Scenario:
        seen: set[str] = set()
        for agent in self.agents:
            prefix = agent.name or agent.kind
            if prefix in seen:
                raise ValueError(f"two agent groups are named {prefix!r}; give each a distinct name")
            seen.add(prefix)
        return self


def _where(loc: tuple[Any, ...]) -> str:
    """Dotted field path; the discriminator tag pydantic inserts after a list index is dropped."""
    parts = [str(p) for i, p in enumerate(loc) if not (i > 0 and isinstance(loc[i - 1], int) and p in AGENT_KINDS)]
    return ".".join(parts) or "(top level)"


def describe(error: ValidationError) -> str:
    """First validation error as one line: ``path: message`` (plus a count of the rest)."""
    errors = error.errors()
    first = errors[0]
    msg = f"{_where(first['loc'])}: {first['msg']}"
    if first.get("type") == "extra_forbidden":
        msg = f"{_where(first['loc'])}: unknown field"
    if len(errors) > 1:
        msg += f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
    return msg


def parse(data: Any, source: str = "<scenario>") -> Scenario:
    if not isinstance(data, dict):
        raise ScenarioError(f"{source}: a scenario must be a YAML mapping, got {type(data).__name__}")
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(f"{source}: {describe(exc)}") from None


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
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"{path}: cannot read: {exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ScenarioError(f"{path}: not valid YAML{where}: {problem}") from None
    if overrides and isinstance(data, dict):
        for dotted, value in overrides.items():
            _set_dotted(data, dotted, value)
    return parse(data, str(path))


def _set_dotted(data: dict[str, Any], dotted: str, value: Any) -> None:
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
