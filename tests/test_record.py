"""Recorder: the digest covers every row in order and does not depend on checkpointing."""

import pandas as pd

from sim.record import CHUNK, Recorder


def fill(recorder, rows, checkpoint_every=None):
    table = recorder.table("t", ("a", "b"))
    for i, row in enumerate(rows):
        table.append(row)
        if checkpoint_every and i % checkpoint_every == 0:
            recorder.checkpoint()
    return recorder


ROWS = [(i, f"x{i % 7}") for i in range(3 * CHUNK + 17)]


def test_digest_independent_of_checkpoint_pattern():
    plain = fill(Recorder(), ROWS).digest()
    assert fill(Recorder(), ROWS, checkpoint_every=1000).digest() == plain
    assert fill(Recorder(), ROWS, checkpoint_every=1).digest() == plain


def test_digest_changes_with_any_row_or_order():
    base = fill(Recorder(), ROWS).digest()
    changed = list(ROWS)
    changed[CHUNK + 3] = (CHUNK + 3, "y")
    assert fill(Recorder(), changed).digest() != base
    swapped = list(ROWS)
    swapped[0], swapped[1] = swapped[1], swapped[0]
    assert fill(Recorder(), swapped).digest() != base
    assert fill(Recorder(), ROWS[:-1]).digest() != base


def test_digest_can_be_read_mid_run_and_keeps_running():
    rec = fill(Recorder(), ROWS[:100])
    early = rec.digest()
    rec.tables["t"].append((999, "z"))
    assert rec.digest() != early
    assert rec.digest() == fill(Recorder(), [*ROWS[:100], (999, "z")]).digest()


def test_table_columns_fixed_and_frames(tmp_path):
    rec = Recorder()
    t = rec.table("trades", ("time_ns", "price"))
    t.append((1, 100))
    assert rec.table("trades", ("time_ns", "price")) is t
    try:
        rec.table("trades", ("other",))
    except ValueError as exc:
        assert "already has columns" in str(exc)
    else:
        raise AssertionError("column mismatch accepted")
    written = rec.write_parquet(tmp_path)
    assert written == ["trades.parquet"]
    assert pd.read_parquet(tmp_path / "trades.parquet").to_dict("records") == [{"time_ns": 1, "price": 100}]
