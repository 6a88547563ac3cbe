import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import os  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
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


@dataclass(frozen=True)
class LoopbackCluster:
    address: str  # the head's GCS, HOST:PORT
    env: dict[str, str]  # the environment a driver process needs (RAY_AUTH_MODE=token)

    def desksim(self, *args: str, timeout: float = 600, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        """Run ``desksim ARGS`` as a driver process of this cluster (in ``cwd``); fail the test if it fails."""
        return run_venv_command("desksim", *args, env=self.env, timeout=timeout, cwd=cwd)


def _start_node(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    """``ray start ... --block`` in a process group of its own: killing the group stops this node only."""
    exe = Path(sys.executable).with_name("ray")
    return subprocess.Popen(
        [str(exe), "start", *args, "--block"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def _stop_node(proc: subprocess.Popen[bytes]) -> None:
    """Stop the processes of one node started by :func:`_start_node` (and nothing else on the machine)."""
    import signal

    for sig, wait_s in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait_s)
        except subprocess.TimeoutExpired:
            continue
        # the CLI has exited; its children (GCS, raylet, workers) share its process group
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            return


_ALIVE_NODES = """
import sys, time, ray
ray.init(address=sys.argv[1], log_to_driver=False)
want, deadline = int(sys.argv[2]), time.time() + 120
while sum(n["Alive"] for n in ray.nodes()) < want and time.time() < deadline:
    time.sleep(0.5)
print(sum(n["Alive"] for n in ray.nodes()))
"""


@pytest.fixture
def loopback_cluster():
    """A two-node Ray cluster started with the ``ray`` CLI (one CPU each), for driver subprocesses.

    ``ray start --head`` on 127.0.0.2 and ``ray start --address`` on 127.0.0.3: Ray rewrites
    127.0.0.1 (and "localhost") to the machine's outward address, which this sandbox does not
    let processes connect to, so the nodes take other loopback addresses. Token authentication
    stays on (``RAY_AUTH_MODE=token``): the head writes the token, the node and the drivers read
    it. Ray reads that variable when it is imported, so drivers run as subprocesses with
    ``cluster.env`` (``cluster.desksim(...)``), never in the test process. Each node runs as
    ``ray start --block`` in its own process group with its own temp dir, and teardown stops
    those groups only: never ``ray stop``, which would stop every Ray on the machine.
    """
    import tempfile

    import ray

    assert not ray.is_initialized(), "a Ray session is still open in this process"
    with socket.socket() as probe:  # a free port for the head's GCS
        probe.bind(("127.0.0.2", 0))
        port = probe.getsockname()[1]
    head = f"127.0.0.2:{port}"
    temp_dir = tempfile.mkdtemp(prefix="ray-t-", dir="/tmp")  # short: Ray's socket paths must fit
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_USAGE_STATS_ENABLED": "0", "PYTHONPATH": str(ROOT)}
    common = ["--num-cpus", "1", "--disable-usage-stats"]
    nodes: list[subprocess.Popen[bytes]] = []
    try:
        nodes.append(
            _start_node(
                [
                    "--head",
                    "--node-ip-address",
                    "127.0.0.2",
                    "--port",
                    str(port),
                    "--include-dashboard",
                    "false",
                    "--temp-dir",
                    temp_dir,
                    *common,
                ],
                env,
            )
        )
        deadline = time.time() + 120
        while True:  # the GCS accepts connections once the head is up
            try:
                socket.create_connection(("127.0.0.2", port), timeout=1).close()
                break
            except OSError:
                assert nodes[0].poll() is None, "ray start --head exited"
                assert time.time() < deadline, "the head did not come up within 120 s"
                time.sleep(0.5)
        nodes.append(_start_node(["--address", head, "--node-ip-address", "127.0.0.3", *common], env))
        alive = subprocess.run(
            [sys.executable, "-c", _ALIVE_NODES, head, "2"], env=env, capture_output=True, text=True, timeout=180
        )
        assert alive.stdout.strip().endswith("2"), f"the second node did not join: {alive.stdout}{alive.stderr}"
        yield LoopbackCluster(head, env)
    finally:
        for proc in reversed(nodes):
            _stop_node(proc)
        import shutil

        shutil.rmtree(temp_dir, ignore_errors=True)


# `make test` runs the suite on two pytest-xdist workers (`-n 2 --dist loadgroup`). The tests that
# start Ray (a local session, Monte Carlo workers, a loopback cluster) share one group, so one
# worker runs them one after another: two Ray sessions never compete for the machine's two CPUs,
# and no Ray test waits on another's cluster. The group is the longest unit of work, so under
# xdist it is collected first: it starts at once and the other worker takes everything else.
# A new test that starts Ray belongs in one of these modules or uses one of these fixtures.
RAY_MODULES = frozenset(
    {"test_runtime_ray.py", "test_risk_placement.py", "test_runtime_cluster.py", "test_montecarlo.py"}
)
RAY_FIXTURES = frozenset({"ray_session", "loopback_cluster"})
RAY_TESTS = frozenset({"test_mc_warns_when_workers_exceed_the_cpus"})  # `desksim mc --workers 2`


def starts_ray(item: pytest.Item) -> bool:
    fixtures = getattr(item, "fixturenames", ())
    return item.path.name in RAY_MODULES or not RAY_FIXTURES.isdisjoint(fixtures) or item.originalname in RAY_TESTS  # type: ignore[attr-defined]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    ray = [item for item in items if starts_ray(item)]
    for item in ray:
        item.add_marker(pytest.mark.xdist_group("ray"))
    if getattr(config.option, "numprocesses", None):
        chosen = {id(item) for item in ray}
        items[:] = ray + [item for item in items if id(item) not in chosen]


# No test asserts a speed (benchmarks/ measures it): Hypothesis's default 200 ms deadline per
# example would make a property fail on a loaded machine (two xdist workers, Ray), not on a bug.
from hypothesis import settings  # noqa: E402

settings.register_profile("desksim", deadline=None)
settings.load_profile("desksim")
