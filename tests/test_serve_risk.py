"""Issue 15 item 6: ``desksim serve`` has the pre-trade gate too. A real quickfix initiator against
a ``desksim serve`` subprocess meets the limits of ``--risk FILE`` (or of the scenario's own
``desk.risk``) exactly at their boundary; a serve without risk configuration keeps accepting; a bad
``--risk`` file is one line and exit code 2."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from actors.risk import RISK_EVENT_COLUMNS
from tests.test_fix_server import ROOT, WAIT, Client, Server, mt, new_order, uid

RISK_FILE = """\
limits:
  max_order_qty: 10000
  collar_pct: 5.0
  max_orders: 50
  order_window_ms: 2000
accounts:
  CLIENT3: {max_order_qty: 500}
"""


def _burst(c: Client, n: int) -> tuple[list[str], float]:
    """``n`` buys of 100 at distinct prices (within the collar), sent back to back: their ClOrdIDs
    and the wall-clock seconds the burst took."""
    ids = [uid(f"R{i:02d}-") for i in range(n)]
    t0 = time.monotonic()
    for i, cl in enumerate(ids):
        c.send(new_order(cl, "B", 100, f"{96.00 - i * 0.01:.2f}"))
    return ids, time.monotonic() - t0


def _answers(c: Client, ids: list[str]) -> dict[str, dict[int, str]]:
    want = set(ids)
    got: dict[str, dict[int, str]] = {}
    while want - set(got):
        er = c.expect(lambda d: d.get(35) == "8" and d.get(11) in want, what="the burst's answers")
        got.setdefault(er[11], er)
    return got


@pytest.fixture(scope="module")
def risk_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    path = tmp_path_factory.mktemp("risk") / "limits.yaml"
    path.write_text(RISK_FILE, encoding="utf-8")
    srv = Server("--scenario", "quiet", "--risk", str(path))
    try:
        yield srv
    finally:
        srv.terminate()


def test_fat_finger_is_refused_with_the_rule(tmp_path: Path, risk_server: Server) -> None:
    c = Client(tmp_path, risk_server.port, "CLIENT2").start()
    try:
        big, ok = uid("FF"), uid("OK")
        c.send(new_order(big, "B", 200_000, "99.00"))
        rej = c.expect(mt("8", _11=big), what="the fat finger's answer")
        assert (rej[150], rej[39], rej[103]) == ("8", "8", "3")
        assert "max order qty 200000 > 10000" in rej[58]
        c.send(new_order(ok, "B", 10_000, "99.00"))  # at the limit: accepted
        assert c.expect(mt("8", _11=ok), what="the order at the limit")[150] == "0"
        over = uid("OV")
        c.send(new_order(over, "B", 10_001, "98.99"))
        assert "max order qty 10001 > 10000" in c.expect(mt("8", _11=over, _150="8"))[58]
        # an account override narrows the limit of its own session
    finally:
        c.stop()


def test_account_override_of_the_risk_file(tmp_path: Path, risk_server: Server) -> None:
    c = Client(tmp_path, risk_server.port, "CLIENT3").start()
    try:
        at, over = uid("AT"), uid("OV")
        c.send(new_order(at, "S", 500, "102.00"))
        assert c.expect(mt("8", _11=at), what="500: at the session's limit")[150] == "0"
        c.send(new_order(over, "S", 501, "102.01"))
        rej = c.expect(mt("8", _11=over), what="501: one more")
        assert rej[150] == "8" and "max order qty 501 > 500" in rej[58]
    finally:
        c.stop()


def test_a_60_order_burst_meets_the_order_limit_exactly(tmp_path: Path, risk_server: Server) -> None:
    c = Client(tmp_path, risk_server.port, "CLIENT1").start()
    try:
        ids, took = _burst(c, 60)
        assert took < 1.0, f"the burst took {took:.2f} s"
        got = _answers(c, ids)
        assert [got[cl][150] for cl in ids[:50]] == ["0"] * 50  # the limit passes
        assert [got[cl][150] for cl in ids[50:]] == ["8"] * 10  # one more fails, and the rest
        assert "order rate 51 > 50 per window" in got[ids[50]][58]
    finally:
        c.stop()


def test_serve_without_risk_configuration_keeps_accepting(tmp_path: Path) -> None:
    srv = Server("--scenario", "quiet")
    c = Client(tmp_path, srv.port, "CLIENT1")
    try:
        c.start()
        big = uid("FF")
        c.send(new_order(big, "B", 200_000, "90.00"))
        assert c.expect(mt("8", _11=big), what="the big order's answer")[150] == "0"
        ids, _ = _burst(c, 60)
        got = _answers(c, ids)
        assert [got[cl][150] for cl in ids] == ["0"] * 60
    finally:
        c.stop()
        srv.terminate()


def test_scenario_desk_risk_section_gates_the_fix_clients(tmp_path: Path) -> None:
    quiet = (ROOT / "scenarios" / "quiet.yaml").read_text(encoding="utf-8")
    scenario = tmp_path / "quiet_with_risk.yaml"
    scenario.write_text(quiet + "\ndesk:\n  risk:\n    limits: {max_order_qty: 1000}\n", encoding="utf-8")
    srv = Server("--scenario", str(scenario))
    c = Client(tmp_path, srv.port, "CLIENT4")
    try:
        c.start()
        at, big = uid("AT"), uid("FF")
        c.send(new_order(at, "S", 1000, "110.00"))
        assert c.expect(mt("8", _11=at), what="at the scenario's limit")[150] == "0"
        c.send(new_order(big, "S", 200_000, "110.00"))
        rej = c.expect(mt("8", _11=big), what="the big order's answer", timeout=WAIT)
        assert rej[150] == "8" and "max order qty 200000 > 1000" in rej[58]
    finally:
        c.stop()
        srv.terminate()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("limits: {max_order_qtty: 5}\n", "limits.max_order_qtty: unknown field"),
        ("limits: {max_order_qty: 0}\n", "limits.max_order_qty"),
        ("- 1\n- 2\n", "must be a YAML mapping"),
        ("limits: [\n", "not valid YAML"),
        (None, "no such file"),
    ],
)
def test_bad_risk_file_is_one_line_and_exit_2(tmp_path: Path, text: str | None, expected: str) -> None:
    path = tmp_path / "risk.yaml"
    if text is not None:
        path.write_text(text, encoding="utf-8")
    out = subprocess.run(
        [sys.executable, "-m", "desksim.cli", "serve", "--scenario", "quiet", "--port", "1", "--risk", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0] and str(path) in lines[0], lines


def test_out_writes_the_gates_risk_events_into_the_run_folder(tmp_path: Path) -> None:
    """``serve --risk FILE --out DIR``: the served gate's audit trail is the run folder's
    ``risk_events`` table, with a simulated run's columns: a refused order (its rule and ClOrdID)
    and a market order whose rest was canceled by the market order protection (collar 0 ticks:
    it may trade at the reference price at worst)."""
    risk = tmp_path / "limits.yaml"
    risk.write_text("limits: {max_order_qty: 100000, market_collar_ticks: 0}\n", encoding="utf-8")
    out = tmp_path / "served"
    srv = Server("--scenario", "quiet", "--risk", str(risk), "--out", str(out), duration=60.0)
    c = Client(tmp_path, srv.port, "CLIENT5")
    try:
        c.start()
        big, mkt = uid("FF"), uid("MK")
        c.send(new_order(big, "B", 100_001, "99.00"))
        assert "max order qty 100001 > 100000" in c.expect(mt("8", _11=big, _150="8"), what="the refusal")[58]
        c.send(new_order(mkt, "B", 100_000, None))
        done = c.expect(mt("8", _11=mkt, _150="4"), what="the market order's protection cancel")
        assert done[58].startswith("market order protection: ") and done[40] == "1"
        c.stop()
        assert c.app.logged_out.wait(WAIT)
    finally:
        c.stop()
        code = srv.terminate()
    err = srv.proc.stderr.read() if srv.proc.stderr else ""
    assert code == 0, err
    events = pd.read_parquet(out / "risk_events.parquet")
    assert tuple(events.columns) == RISK_EVENT_COLUMNS
    rows = [tuple(r) for r in events[["actor", "kind", "action", "cl_ord_id"]].itertuples(index=False)]
    assert ("CLIENT5", "max_order_qty", "reject", big) in rows
    assert ("CLIENT5", "market_protection", "cancel", mkt) in rows
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["rows"]["risk_events"] == len(events) and summary["risk"]["breaches"] >= 1
