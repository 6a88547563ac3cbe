"""Atomic writes, the one place for them: a file or a folder is filled under a temporary sibling
name and renamed into place, so a reader never sees half of it and a failure leaves the old one."""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd


@contextmanager
def atomic_path(path: Path, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary sibling of ``path`` to write; on success it replaces ``path`` atomically.

    ``suffix`` keeps a file type visible to writers that choose a format by extension (``.png``).
    """
    path = Path(path)
    tmp = path.parent / f".{path.name}.tmp-{uuid.uuid4().hex[:8]}{suffix}"
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


def write_json(path: Path, data: Any) -> None:
    """Write ``data`` as sorted, indented JSON to ``path`` atomically."""
    write_text(path, json.dumps(data, indent=2, sort_keys=True, default=_jsonable) + "\n")


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def write_folder_atomically(out: Path, fill: Callable[[Path], None], *, replace: bool = True) -> Path:
    """Create ``out`` by filling a temporary sibling folder, then renaming it into place.

    A failure inside ``fill`` leaves ``out`` as it was (absent or the previous run). With
    ``replace=False`` an existing ``out`` is never touched: ``FileExistsError`` instead.
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        fill(tmp)
        if out.exists() and not replace:
            raise FileExistsError(f"{out} already exists")
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


def write_run(out: Path, summary: dict[str, Any], frames: dict[str, pd.DataFrame], *, replace: bool = True) -> Path:
    def fill(folder: Path) -> None:
        for name, frame in frames.items():
            frame.to_parquet(folder / f"{name}.parquet", index=False)
        write_json(folder / "summary.json", summary)

    return write_folder_atomically(out, fill, replace=replace)
