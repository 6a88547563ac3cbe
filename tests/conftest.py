import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import os  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
from dataclasses import dataclass  # noqa: E402

import pytest  # noqa: E402


def run_venv_command(
    name: str, *args: str, env: dict[str, str], timeout: float, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run this venv's ``name`` command (ray, desksim); fail the test with its output if it fails."""
    exe = Path(sys.executable).with_name(name)
    proc = subprocess.run([str(exe), *args], env=env, capture_output=True, text=True, timeout=timeout, cwd=cwd)
    assert proc.returncode == 0, f"{name} {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def _ray_cli(*args: str, env: dict[str, str]) -> None:
    run_venv_command("ray", *args, env=env, timeout=180)


@dataclass(frozen=True)
class LoopbackCluster:
    address: str  # the head's GCS, HOST:PORT
    env: dict[str, str]  # the environment a driver process needs (RAY_AUTH_MODE=token)

    def desksim(self, *args: str, timeout: float = 600, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        """Run ``desksim ARGS`` as a driver process of this cluster (in ``cwd``); fail the test if it fails."""
        return run_venv_command("desksim", *args, env=self.env, timeout=timeout, cwd=cwd)


@pytest.fixture
def loopback_cluster():
    """A two-node Ray cluster started with the ``ray`` CLI (one CPU each), for driver subprocesses.

    ``ray start --head`` on 127.0.0.2 and ``ray start --address`` on 127.0.0.3: Ray rewrites
    127.0.0.1 (and "localhost") to the machine's outward address, which this sandbox does not
    let processes connect to, so the nodes take other loopback addresses. Token authentication
    stays on (``RAY_AUTH_MODE=token``): the head writes the token, the node and the drivers read
    it. Ray reads that variable when it is imported, so drivers run as subprocesses with
    ``cluster.env`` (``cluster.desksim(...)``), never in the test process. ``ray stop --force``
    afterwards stops every Ray process on the machine, so no Ray session may be open meanwhile.
    """
    import ray

    assert not ray.is_initialized(), "a Ray session is still open in this process"
    with socket.socket() as probe:  # a free port for the head's GCS
        probe.bind(("127.0.0.2", 0))
        port = probe.getsockname()[1]
    head = f"127.0.0.2:{port}"
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_USAGE_STATS_ENABLED": "0", "PYTHONPATH": str(ROOT)}
    common = ["--num-cpus", "1", "--disable-usage-stats"]
    try:
        _ray_cli("start", "--head", "--node-ip-address", "127.0.0.2", "--port", str(port),
                 "--include-dashboard", "false", *common, env=env)  # fmt: skip
        _ray_cli("start", "--address", head, "--node-ip-address", "127.0.0.3", *common, env=env)
        yield LoopbackCluster(head, env)
    finally:
        _ray_cli("stop", "--force", env=env)
