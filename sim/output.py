"""Run folders, written atomically: a temporary sibling folder renamed into place."""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd


def write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True, default=_jsonable) + "\n", encoding="utf-8")


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def write_folder_atomically(out: Path, fill: Callable[[Path], None]) -> Path:
    """Create ``out`` by filling a temporary sibling folder, then renaming it into place.

    A failure inside ``fill`` leaves ``out`` as it was (absent or the previous run).
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        fill(tmp)
        if out.exists():
            old = out.parent / f".{out.name}.old-{uuid.uuid4().hex[:8]}"
            os.replace(out, old)
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def write_run(out: Path, summary: dict[str, Any], frames: dict[str, pd.DataFrame]) -> Path:
    def fill(folder: Path) -> None:
        for name, frame in frames.items():
            frame.to_parquet(folder / f"{name}.parquet", index=False)
        write_json(folder / "summary.json", summary)

    return write_folder_atomically(out, fill)
