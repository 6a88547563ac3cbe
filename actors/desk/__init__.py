"""Strategy desk: signals (``strategies``), execution schedules (``execution``), the desk actor
(``desk``) and its analytics (``analytics``)."""

from actors.desk.analytics import desk_frames, desk_summary
from actors.desk.desk import DeskParams, StrategyDesk
from actors.desk.execution import (
    Schedule,
    VolumeCurve,
    almgren_chriss_schedule,
    twap_schedule,
    vwap_schedule,
)
from actors.desk.strategies import (
    ImbalanceParams,
    ImbalanceSignal,
    MeanReversionParams,
    MeanReversionSignal,
    MomentumSignal,
    MomentumSignalParams,
    fractional_kelly_size,
)

__all__ = [
    "DeskParams",
    "ImbalanceParams",
    "ImbalanceSignal",
    "MeanReversionParams",
    "MeanReversionSignal",
    "MomentumSignal",
    "MomentumSignalParams",
    "Schedule",
    "StrategyDesk",
    "VolumeCurve",
    "almgren_chriss_schedule",
    "desk_frames",
    "desk_summary",
    "fractional_kelly_size",
    "twap_schedule",
    "vwap_schedule",
]
