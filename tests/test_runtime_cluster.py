"""The Ray runtime on a two-node cluster started with ``ray start`` (slow): ``desksim run
--runtime ray --address`` puts partitions on both nodes, window traffic crosses between them
over TCP, and the run equals the local one."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from desksim import api
from scenarios.schema import load
from tests.helpers import computed


@pytest.mark.slow
def test_ray_runtime_across_two_nodes_gives_the_local_run(loopback_cluster, tmp_path):
    local = api.run_scenario(api.shorten(load("quick"), 120), 2, source="quick")
    out = tmp_path / "ray"
    loopback_cluster.desksim(
        "run", "quick", "--seed", "2", "--duration", "120", "--no-report", "--runtime", "ray",
        "--address", loopback_cluster.address, "--out", str(out),
    )  # fmt: skip
    summary = json.loads((out / "summary.json").read_text())
    nodes = summary["ray"]["nodes"]
    assert len(set(nodes.values())) == 2, nodes  # SPREAD put partitions on both nodes
    assert computed(summary) == json.loads(json.dumps(computed(local.summary), default=str))
    for name in ("trades", "orders"):
        pd.testing.assert_frame_equal(pd.read_parquet(out / f"{name}.parquet"), local.frames[name])


@pytest.mark.slow
def test_desk_scenario_on_the_cluster_gives_the_local_run(loopback_cluster, tmp_path):
    """Issue 13 item 8: a desk scenario (desk, OMS, FIX gateway, risk officer: the fix package too) on
    the two-node cluster, driven from a folder outside the checkout, equals the local run."""
    local = api.run_scenario(api.shorten(load("kill_switch_drill"), 150), 1, source="kill_switch_drill")
    assert local.frames["scenario_events"]["action"].tolist()[:2] == ["fat_finger", "kill_switch"]
    out = tmp_path / "ray"
    env_cwd = tmp_path / "elsewhere"
    env_cwd.mkdir()
    loopback_cluster.desksim(
        "run", "kill_switch_drill", "--seed", "1", "--duration", "150", "--no-report", "--runtime", "ray",
        "--address", loopback_cluster.address, "--out", str(out), cwd=env_cwd,
    )  # fmt: skip
    summary = json.loads((out / "summary.json").read_text())
    assert len(set(summary["ray"]["nodes"].values())) == 2
    assert summary["digest"] == local.summary["digest"]
    for name in ("scenario_events", "orders", "fix_messages"):
        pd.testing.assert_frame_equal(pd.read_parquet(out / f"{name}.parquet"), local.frames[name])
