"""Event recorder: named tables of rows, a running sha256 digest, Parquet output.

Rows are plain tuples appended in delivery order. Every ``CHUNK`` rows a table folds the
chunk's canonical text (``repr`` of a list of tuples of ints, strings and floats) into its own
running sha256. The run digest is a sha256 over the table names, columns, row counts and table
digests, so it covers the whole ordered event log and is cheap on the hot path.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pandas costs ~0.5 s to import: paid only by whoever asks for frames
    import pandas as pd

CHUNK = 4096


class Table:
    """Append-only table with a running digest."""

    __slots__ = ("_hash", "_hashed", "append", "columns", "name", "rows")

    def __init__(self, name: str, columns: Sequence[str]) -> None:
        self.name = name
        self.columns = tuple(columns)
        self.rows: list[tuple[Any, ...]] = []
        self._hash = hashlib.sha256(repr((name, self.columns)).encode())
        self._hashed = 0
        self.append = self.rows.append

    def fold_full_chunks(self) -> None:
        """Fold every complete chunk not yet hashed; chunk boundaries are fixed multiples of CHUNK."""
        rows, done = self.rows, self._hashed
        end = len(rows) - len(rows) % CHUNK
        while done < end:
            self._hash.update(repr(rows[done : done + CHUNK]).encode())
            done += CHUNK
        self._hashed = done

    def digest(self) -> str:
        """Digest of every row so far; the same whatever the checkpoint pattern was."""
        self.fold_full_chunks()
        tail = self._hash.copy()
        if self._hashed < len(self.rows):
            tail.update(repr(self.rows[self._hashed :]).encode())
        return tail.hexdigest()

    def frame(self) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame.from_records(self.rows, columns=list(self.columns))

    def __len__(self) -> int:
        return len(self.rows)


class Recorder:
    """A set of tables that together make a run's event log."""

    def __init__(self) -> None:
        self.tables: dict[str, Table] = {}

    def table(self, name: str, columns: Iterable[str]) -> Table:
        existing = self.tables.get(name)
        cols = tuple(columns)
        if existing is not None:
            if existing.columns != cols:
                raise ValueError(f"table {name!r} already has columns {existing.columns}")
            return existing
        table = self.tables[name] = Table(name, cols)
        return table

    def checkpoint(self) -> None:
        """Fold complete chunks into the running digests (bounded work per call)."""
        for table in self.tables.values():
            table.fold_full_chunks()

    def digest(self) -> str:
        h = hashlib.sha256()
        for name in sorted(self.tables):
            table = self.tables[name]
            h.update(f"{name}:{len(table)}:{table.digest()}\n".encode())
        return h.hexdigest()

    def frames(self) -> dict[str, pd.DataFrame]:
        return {name: table.frame() for name, table in self.tables.items()}

    def write_parquet(self, folder: Path) -> list[str]:
        written = []
        for name, frame in self.frames().items():
            path = folder / f"{name}.parquet"
            frame.to_parquet(path, index=False)
            written.append(path.name)
        return written
