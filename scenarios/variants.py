"""Counterfactual variants of a scenario file: the same market without some of its timeline.

``without_action(data, "start_program")`` answers "does this market crash without its sell
program?": the scenario's YAML mapping with every event of that action removed and its
``monte_carlo`` distributions renumbered to the events that remain (a distribution of a removed
event goes with it). ``write_without_action`` writes such a copy into a folder of the caller's,
for ``desksim mc`` or ``benchmarks/crash_shares.py --without-program``.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import yaml

from scenarios.schema import ScenarioError, load, read_yaml, resolve

__all__ = ["without_action", "write_without_action"]

_EVENT_PATH = re.compile(r"^events\.(\d+)(\..*)?$")


def without_action(data: dict[str, Any], action: str) -> dict[str, Any]:
    """A deep copy of scenario mapping ``data`` without its ``action`` events (see the module
    docstring); its name gets ``_without_<action>``. Raises ``ScenarioError`` when it has none."""
    events = list(data.get("events") or [])
    kept = [i for i, e in enumerate(events) if not (isinstance(e, dict) and e.get("do") == action)]
    if len(kept) == len(events):
        raise ScenarioError(f"{data.get('name', 'the scenario')} has no {action!r} event to leave out")
    new_index = {old: new for new, old in enumerate(kept)}
    out = copy.deepcopy(data)
    out["events"] = [copy.deepcopy(events[i]) for i in kept]
    out["name"] = f"{data.get('name', 'scenario')}_without_{action}"
    mc = out.get("monte_carlo")
    if isinstance(mc, dict) and isinstance(mc.get("distributions"), dict):
        renamed: dict[str, Any] = {}
        for path, dist in mc["distributions"].items():
            m = _EVENT_PATH.match(str(path))
            if m is None:
                renamed[path] = dist
            elif int(m.group(1)) in new_index:
                renamed[f"events.{new_index[int(m.group(1))]}{m.group(2) or ''}"] = dist
        mc["distributions"] = renamed
    return out


def write_without_action(name_or_path: str | Path, action: str, folder: str | Path) -> Path:
    """Write ``<folder>/<name>_without_<action>.yaml`` from a scenario file or bundled name and
    check that it loads; return its path."""
    data = read_yaml(resolve(name_or_path))
    if not isinstance(data, dict):
        raise ScenarioError(f"{name_or_path}: a scenario must be a YAML mapping")
    variant = without_action(data, action)
    path = Path(folder) / f"{variant['name']}.yaml"
    path.write_text(yaml.safe_dump(variant, sort_keys=False, allow_unicode=True), encoding="utf-8")
    load(path)  # the variant is a valid scenario
    return path
