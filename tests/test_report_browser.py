"""report.html opened in a real headless Chromium: every plot loads, nothing errors in the console.

Needs Debian's ``chromium`` and ``chromium-driver`` (``/usr/bin/chromium``, ``/usr/bin/chromedriver``) and
``selenium`` (a dev extra). ``.ci/run`` installs the browser and sets ``DESKSIM_REQUIRE_BROWSER=1``, so in CI a
missing browser fails these tests; a developer without it gets a skip that says how to install it.
Override the binaries with ``DESKSIM_CHROMIUM`` / ``DESKSIM_CHROMEDRIVER``.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import time
from html import unescape
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from desksim import api
from desksim.report import write_report
from desksim.report.plots import SIDECAR, plot_problems

S = 1_000_000_000
OPEN = 34_200 * S
INSTALL = "sudo apt-get install -y chromium chromium-driver (or run .ci/run, which installs them)"

# The flags that work on a machine with no screen and a closed network (no sandbox because CI runs as root).
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--window-size=1280,2000",
)

ALL_LOADED_JS = "return Array.from(document.images).every(i => i.complete && i.naturalWidth > 0);"
IMAGES_JS = """
return Array.from(document.images).map(i => {
  const r = i.getBoundingClientRect();
  return {complete: i.complete, naturalWidth: i.naturalWidth, naturalHeight: i.naturalHeight,
          width: r.width, height: r.height, alt: i.alt, plot: i.dataset.plot,
          visible: getComputedStyle(i).display !== 'none' && getComputedStyle(i).visibility !== 'hidden'};
});
"""


def _missing(what: str) -> None:
    """Fail when the environment promises a browser (CI), skip with the install command otherwise."""
    message = f"{what}; install it with: {INSTALL}"
    if os.environ.get("DESKSIM_REQUIRE_BROWSER", "") not in ("", "0"):
        pytest.fail(f"DESKSIM_REQUIRE_BROWSER is set but {message}", pytrace=False)
    pytest.skip(message)


def _find(env: str, *names: str) -> str | None:
    if os.environ.get(env):
        return shutil.which(os.environ[env])  # None when it isn't an executable
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    return None


def _descendants(pid: int) -> set[int]:
    """Every live process below ``pid``, read from /proc (Linux)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """One headless Chromium for the module; afterwards, checks that it and chromedriver are gone."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        _missing("selenium is not installed (pip install -e '.[dev]')")
    chromium = _find("DESKSIM_CHROMIUM", "chromium", "chromium-browser")
    driver_path = _find("DESKSIM_CHROMEDRIVER", "chromedriver")
    if chromium is None:
        _missing("Chromium is not installed")
    if driver_path is None:
        _missing("chromedriver is not installed")

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # An explicit driver path: Selenium Manager (which would try to download a driver) never runs.
    service = Service(executable_path=driver_path)
    driver = webdriver.Chrome(options=options, service=service)
    assert service.process is not None
    pid = service.process.pid
    spawned = _descendants(pid) | {pid}
    try:
        driver.set_page_load_timeout(20)
        yield driver
    finally:
        spawned |= _descendants(pid)  # renderers started while the pages were open
        driver.quit()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(_alive(p) for p in spawned):
            time.sleep(0.1)
        left = sorted(p for p in spawned if _alive(p))
        assert not left, f"chromium/chromedriver processes left behind: {left}"


def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR", path
    return struct.unpack(">II", head[16:24])


def file_title(html: Path) -> str:
    """The <title> as written in the file (to compare with what the browser shows)."""
    text = html.read_text(encoding="utf-8")
    return unescape(text.split("<title>", 1)[1].split("</title>", 1)[0])


def render(driver, html: Path, title: str, headings: tuple[str, ...]) -> list[dict]:
    """Open ``html`` from disk and check that the page is complete, its images decoded and shown, its console clean."""
    driver.get_log("browser")  # drop anything from a previous page
    driver.get(html.resolve().as_uri())
    assert driver.execute_script("return document.readyState") == "complete"
    assert driver.title == title
    assert driver.find_element("tag name", "h1").text == title
    shown = [h.text for h in driver.find_elements("tag name", "h2")]
    for heading in headings:  # each expected section, by the start of its heading
        assert any(h.startswith(heading) for h in shown), (heading, shown)
    assert driver.execute_script(ALL_LOADED_JS) is True
    images = driver.execute_script(IMAGES_JS)
    pngs = sorted(html.parent.glob("*.png"))
    assert len(images) == len(pngs) >= 2
    # Each plot written to the folder is in the page, decoded at its own size, and laid out big enough to read.
    assert sorted((img["naturalWidth"], img["naturalHeight"]) for img in images) == sorted(map(_png_size, pngs))
    for img in images:
        assert img["complete"] and img["naturalWidth"] > 0 and img["naturalHeight"] > 0, img
        assert img["visible"] and img["width"] >= 300 and img["height"] >= 150, img
        assert img["alt"], img
    severe = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
    assert not severe, severe
    assert_plots_have_data(html.parent, images)
    return images


def assert_plots_have_data(folder: Path, images: list[dict]) -> None:
    """Each plot shown has data inside every one of its axes and readable time ticks, from the record
    the plot functions wrote beside the PNGs (``plots.json``: per axes its limits, data points inside,
    tick labels and event marks)."""
    records = json.loads((folder / SIDECAR).read_text())
    shown = {img["plot"] for img in images}
    assert shown <= set(records), shown - set(records)
    assert plot_problems({name: records[name] for name in shown}) == []


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("browser") / "run"
    api.run("quick", seed=1, out=out, duration_s=120)
    return out


def test_run_report_renders_in_chromium(browser, quick_run):
    html = write_report(quick_run)
    summary = json.loads((quick_run / "summary.json").read_text())
    title = file_title(html)
    assert title.startswith("desksim run: ")
    images = render(browser, html, title, ("Summary", "Plots", "Realism (stylised facts"))
    assert len(images) == 2  # price, spread and depth
    assert summary["digest"] in browser.find_element("tag name", "body").text


def test_run_report_with_desk_halts_and_risk_renders_in_chromium(browser, quick_run, tmp_path):
    """All four run plots: the quick run's market plus a desk P&L, a halt and a kill switch added by hand."""
    folder = tmp_path / "run"
    shutil.copytree(quick_run, folder, ignore=shutil.ignore_patterns("*.png", "*.html"))
    pd.DataFrame(
        {
            "time_ns": [OPEN + 20 * S, OPEN + 25 * S, OPEN + 70 * S],
            "symbol": "XYZ",
            "event": ["limit_state_entered", "halted", "resumed"],
            "reason": ["band", "luld", "auction"],
            "price": [5000, None, 5001],
        }
    ).to_parquet(folder / "halts.parquet")
    pd.DataFrame(
        {
            "time_ns": [OPEN + 10 * S, OPEN + 40 * S, OPEN + 90 * S],
            "actor": "risk",
            "kind": ["order_rate", "kill_switch", "kill_switch_off"],
            "limit": [10, 0, 0],
            "value": [11, 0, 0],
            "action": ["reject", "kill", "release"],
        }
    ).to_parquet(folder / "risk_events.parquet")
    t = np.arange(OPEN, OPEN + 120 * S, S)
    pd.DataFrame({"time_ns": t, "position": np.arange(t.size) * 10, "pnl": np.sin(np.arange(t.size) / 20)}).to_parquet(
        folder / "pnl.parquet"
    )
    html = write_report(folder)
    images = render(browser, html, file_title(html), ("Summary", "Plots", "Halts", "Risk events"))
    assert len(images) == 4  # price, spread and depth, desk, risk timeline


def test_monte_carlo_report_renders_in_chromium(browser, tmp_path):
    """A small Monte Carlo folder built in process, without Ray (as in test_report.py)."""
    from desksim.montecarlo import Plan, _read_scenario, _rows_table, run_one, summarize, validate_distributions

    data, source, _ = _read_scenario("quick")
    dists = validate_distributions({"agents.1.params.rate_per_hour": {"dist": "uniform", "low": 30, "high": 90}})
    plan = Plan(data, source, 3, 6, 3, dists, 60.0)
    runs = _rows_table(plan, [run_one(plan, i) for i in range(plan.runs)]).to_pandas()
    folder = tmp_path / "mc"
    folder.mkdir()
    runs.to_parquet(folder / "runs.parquet")
    summary = summarize(runs, plan, "quick")
    (folder / "summary.json").write_text(json.dumps(summary))
    html = write_report(folder)
    title = file_title(html)
    assert title.startswith("desksim Monte Carlo: quick")
    headings = ("Value at risk and expected shortfall", "Plots", "Event frequencies", "Realism checks across runs")
    images = render(browser, html, title, headings)
    assert len(images) == 4  # P&L histogram, events, market, realism


@pytest.mark.slow
def test_fat_finger_report_shows_desk_pnl_position_and_events_in_chromium(browser, tmp_path):
    """14.5: the report of fat_finger (to just past its 10:15 fat finger) shows the desk's position and
    P&L with data inside the axes and the scenario's event on the price and desk plots."""
    out = tmp_path / "ff"
    api.run("fat_finger", seed=1, out=out, duration_s=47 * 60)
    html = write_report(out)
    images = render(browser, html, file_title(html), ("Summary", "Plots"))
    shown = {img["plot"]: img for img in images}
    assert {"price.png", "desk.png", "risk_timeline.png"} <= set(shown)
    records = json.loads((out / SIDECAR).read_text())
    position, pnl = records["desk.png"]
    assert position["ylabel"] == "position (shares)" and position["inside"] > 10
    assert pnl["ylabel"] == "P&L (currency)" and pnl["inside"] > 10
    for name in ("price.png", "desk.png"):
        assert all(any(e.startswith("fat_finger S 200000") for e in ax["events"]) for ax in records[name]), name
    assert "Desk position and P&L" in shown["desk.png"]["alt"] or "P&L" in shown["desk.png"]["alt"]
