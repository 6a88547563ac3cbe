"""What a run reads from its live actors at the end, as plain picklable data.

Kept apart from :mod:`desksim.runner` (pandas, the analytics): every Ray partition process
imports this module when it unpickles its constructor's arguments, so it must not pay for the
summary's imports (tests/test_startup.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def actor_extras(assembly: Any, owns: Callable[[Any], bool] = lambda _actor: True) -> dict[str, Any]:
    """What the summary reads from live actors (desk, OMS, risk officer), as plain picklable data.

    ``owns`` says which actors live in this process (the Ray runtime calls it per partition)."""
    out: dict[str, Any] = {}
    desk, oms, risk = assembly.desk, assembly.oms, assembly.risk
    if desk is not None and owns(desk):
        out["desk"] = jsonable(desk.summary())
        out["desk_frames"] = desk.frames()
    if oms is not None and owns(oms):
        out["oms"] = jsonable(oms.snapshot())
    if risk is not None and owns(risk):
        out["risk"] = jsonable(risk.summary())
        out["risk_snapshot"] = jsonable(risk.snapshot())
    return out


def jsonable(value: Any) -> Any:
    """Plain JSON types (dict keys as strings, numpy scalars as Python numbers)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if hasattr(value, "item"):
        return value.item()
    return value
