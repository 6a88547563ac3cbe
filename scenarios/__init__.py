"""Bundled scenarios (YAML files beside this module) and their schema."""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent


def bundled() -> dict[str, Path]:
    """Bundled scenario names -> paths."""
    return {p.stem: p for p in sorted(HERE.glob("*.yaml"))}
