"""The Ray runtime on a two-node cluster started with ``ray start`` (slow): ``desksim run
--runtime ray --address`` puts partitions on both nodes, window traffic crosses between them
over TCP, and the run equals the local one."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from scenarios.schema import load
from sim import api
from tests.helpers import computed


@pytest.mark.slow
def test_ray_runtime_across_two_nodes_gives_the_local_run(loopback_cluster, tmp_path):
    local = api.run_scenario(api._shorten(load("quick"), 120), 2, source="quick")
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
