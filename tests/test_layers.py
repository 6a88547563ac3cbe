"""The layers are enforced: import-linter passes on the tree and fails on an upward import."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("desksim", "scenarios", "fix", "actors", "sim")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint(root: Path) -> subprocess.CompletedProcess[str]:
    env = {"PYTHONPATH": str(root), "PATH": str(LINT_IMPORTS.parent)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(root / "pyproject.toml"), "--no-cache"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _copy_tree(dst: Path) -> Path:
    for name in PACKAGES:
        shutil.copytree(ROOT / name, dst / name, ignore=shutil.ignore_patterns("__pycache__", "*.yaml", "*.png"))
    shutil.copy(ROOT / "pyproject.toml", dst / "pyproject.toml")
    return dst


@pytest.fixture(scope="module")
def lint_available() -> None:
    if not LINT_IMPORTS.exists():
        pytest.fail(f"{LINT_IMPORTS} is missing: install the dev extras (pip install -e '.[dev]')")


def test_the_tree_keeps_every_contract(lint_available: None, tmp_path: Path) -> None:
    out = _lint(_copy_tree(tmp_path))
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "0 broken" in out.stdout


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        ("sim/kernel.py", "import actors.exchange.book  # noqa", "application > scenarios"),  # engine -> actors
        ("actors/makers.py", "import fix.codec  # noqa", "application > scenarios"),  # actors -> FIX
        ("fix/codec.py", "import desksim.api  # noqa", "application > scenarios"),  # FIX -> application
        ("actors/trader.py", "import quickfix  # noqa", "actors speak native messages"),  # actors -> FIX engine
        ("sim/network.py", "import ray  # noqa", "the engine knows no markets"),  # engine core -> Ray
    ],
)
def test_a_forbidden_import_breaks_lint(
    lint_available: None, tmp_path: Path, module: str, line: str, contract: str
) -> None:
    root = _copy_tree(tmp_path)
    path = root / module
    path.write_text(path.read_text(encoding="utf-8") + f"\n{line}\n", encoding="utf-8")
    out = _lint(root)
    assert out.returncode != 0
    broken = out.stdout[out.stdout.index("Contracts:") :]
    assert contract in broken and "BROKEN" in out.stdout


def test_an_import_cycle_between_siblings_breaks_lint(lint_available: None, tmp_path: Path) -> None:
    root = _copy_tree(tmp_path)
    path = root / "sim" / "network.py"  # the kernel imports the network; the network importing the kernel is a cycle
    path.write_text(path.read_text(encoding="utf-8") + "\nimport sim.kernel  # noqa\n", encoding="utf-8")
    out = _lint(root)
    assert out.returncode != 0
    assert "no import cycles between sibling modules" in out.stdout and "BROKEN" in out.stdout
