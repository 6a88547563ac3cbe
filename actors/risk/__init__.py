"""The independent risk function, along its seams:

* :mod:`actors.risk.limits` -- :class:`RiskLimits`, :class:`GateConfig`, the audit
  :class:`RiskEvent` and the :class:`SetRiskLimits` message;
* :mod:`actors.risk.ledger` -- execution reports and the :class:`Ledger` (positions, cash, open
  orders and in-flight reservations);
* :mod:`actors.risk.gate` -- the :class:`PreTradeGate` (one inside each gateway actor, built from a
  :class:`GateConfig`; the officer keeps its own as its independent view);
* :mod:`actors.risk.officer` -- the :class:`RiskOfficer` actor and its VaR / ES;
* :mod:`actors.risk.reconcile` -- OMS vs officer vs exchange.

Units: prices in integer ticks, quantities in shares, cash / notional / P&L / VaR in ticks x shares
(cents when the tick is 0.01). Boundaries are inclusive: a limit of X allows X and refuses X + 1.
Sliding windows hold the events of the last ``window`` nanoseconds. Limits are looked up most
specific first: ``"ACCOUNT/SYMBOL"``, ``"ACCOUNT"``, ``"*/SYMBOL"``, then the default. The account
of an order is its FIX session (SenderCompID), never the client-supplied Account(1) tag, which may
only narrow. See docs/risk.md for every control.
"""

from actors.risk.gate import PreTradeGate
from actors.risk.ledger import ExecReport, Ledger, OpenOrder, parse_execution_report
from actors.risk.limits import RISK_EVENT_COLUMNS, GateConfig, RiskEvent, RiskLimits, SetRiskLimits
from actors.risk.officer import (
    RiskOfficer,
    VaRFigures,
    grid_returns,
    historical_var_es,
    minute_returns,
    parametric_var_es,
    var_min_observations,
)
from actors.risk.reconcile import (
    OFFICER_LEG,
    OMS_LEG,
    Break,
    fills_from_orders_table,
    positions_from_fills,
    reconcile,
)

__all__ = [
    "OFFICER_LEG",
    "OMS_LEG",
    "RISK_EVENT_COLUMNS",
    "Break",
    "ExecReport",
    "GateConfig",
    "Ledger",
    "OpenOrder",
    "PreTradeGate",
    "RiskEvent",
    "RiskLimits",
    "RiskOfficer",
    "SetRiskLimits",
    "VaRFigures",
    "fills_from_orders_table",
    "grid_returns",
    "historical_var_es",
    "minute_returns",
    "parametric_var_es",
    "parse_execution_report",
    "positions_from_fills",
    "reconcile",
    "var_min_observations",
]
