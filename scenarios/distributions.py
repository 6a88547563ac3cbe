"""Monte Carlo parameter distributions of a scenario's ``monte_carlo:`` section: their validation."""

from __future__ import annotations

import math
from typing import Any

DISTRIBUTIONS = ("uniform", "normal", "lognormal", "choice")


def validate_distributions(distributions: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    """Check a distributions mapping; raise ``ValueError`` naming the path and the problem.

    Specs: ``{"dist": "uniform", "low", "high"}``, ``{"dist": "normal", "mean", "sd"}``,
    ``{"dist": "lognormal", "mu" | "median", "sigma"}`` (``mu``/``sigma`` of the underlying
    normal), ``{"dist": "choice", "values": [...], "weights": [...]?}``. Numeric ones accept
    ``min``/``max`` (clip) and ``integer: true`` (round to the nearest integer).
    """
    if not distributions:
        return {}
    if not isinstance(distributions, dict):
        raise ValueError(f"monte_carlo distributions must be a mapping, got {type(distributions).__name__}")
    out: dict[str, dict[str, Any]] = {}
    for path, spec in distributions.items():
        where = f"monte_carlo.{path}"
        if not isinstance(path, str) or not path:
            raise ValueError(f"{where}: parameter path must be a non-empty dotted string")
        if not isinstance(spec, dict):
            raise ValueError(f"{where}: expected a mapping with 'dist', got {type(spec).__name__}")
        dist = spec.get("dist")
        if dist not in DISTRIBUTIONS:
            raise ValueError(f"{where}.dist: expected one of {', '.join(DISTRIBUTIONS)}, got {dist!r}")
        allowed = {"dist", "min", "max", "integer"} | {
            "uniform": {"low", "high"},
            "normal": {"mean", "sd"},
            "lognormal": {"mu", "median", "sigma"},
            "choice": {"values", "weights"},
        }[dist]
        extra = sorted(set(spec) - allowed)
        if extra:
            raise ValueError(f"{where}.{extra[0]}: unknown field for a {dist} distribution")

        def num(key: str, spec: dict[str, Any] = spec, where: str = where) -> float:
            value = spec.get(key)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise ValueError(f"{where}.{key}: expected a finite number, got {value!r}")
            return float(value)

        if dist == "uniform":
            if num("low") > num("high"):
                raise ValueError(f"{where}: low must be <= high")
        elif dist == "normal":
            num("mean")
            if num("sd") < 0:
                raise ValueError(f"{where}.sd: must be >= 0")
        elif dist == "lognormal":
            if ("mu" in spec) == ("median" in spec):
                raise ValueError(f"{where}: give exactly one of mu, median")
            if "median" in spec and num("median") <= 0:
                raise ValueError(f"{where}.median: must be > 0")
            if "mu" in spec:
                num("mu")
            if num("sigma") < 0:
                raise ValueError(f"{where}.sigma: must be >= 0")
        else:
            values = spec.get("values")
            if not isinstance(values, list) or not values:
                raise ValueError(f"{where}.values: expected a non-empty list")
            weights = spec.get("weights")
            if weights is not None:
                if not isinstance(weights, list) or len(weights) != len(values):
                    raise ValueError(f"{where}.weights: expected a list as long as values")
                w = [num("weights", {"weights": x}, where) for x in weights]
                if min(w) < 0 or sum(w) <= 0:
                    raise ValueError(f"{where}.weights: must be >= 0 with a positive sum")
            if {"min", "max", "integer"} & set(spec):
                raise ValueError(f"{where}: min/max/integer apply to numeric distributions only")
        for key in ("min", "max"):
            if key in spec:
                num(key)
        if "integer" in spec and not isinstance(spec["integer"], bool):
            raise ValueError(f"{where}.integer: expected true or false")
        out[path] = dict(spec)
    return out
