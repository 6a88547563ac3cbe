"""What a process that only runs actors imports: every Ray partition (7 per run by default) pays
its imports at start-up, so the build path stays free of pandas and scipy (together about 2 s of
CPU per process here, most of a Ray run's set-up before 2026-12-07)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
from hypothesis import example, given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from actors.world import _ar1

PARTITION_IMPORTS = "import desksim.assembly, desksim.ray_run, desksim.extras, sim.runtime.ray"


def test_a_partition_process_imports_neither_pandas_nor_scipy():
    code = f"import sys, json; {PARTITION_IMPORTS}; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    heavy = {m.split(".")[0] for m in json.loads(out)} & {"pandas", "scipy", "matplotlib", "pyarrow"}
    assert not heavy, f"the actors' build path imports {heavy}"


def test_the_extract_a_partition_unpickles_lives_outside_the_runner():
    """The Ray runtime pickles ``extract`` into each partition's constructor: unpickling it imports
    its module, so it must not be desksim.runner (pandas and the analytics)."""
    from desksim.api import actor_extras

    assert actor_extras.__module__ == "desksim.extras"


finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)


@example(a=-0.0, innovations=np.array([0.0, -0.0]), y0=0.0)  # signed zeros: found by CI, failed before
@given(
    a=st.floats(min_value=-0.9999, max_value=0.9999, allow_nan=False),
    innovations=arrays(np.float64, st.integers(0, 300), elements=finite),
    y0=finite,
)
def test_ar1_gives_the_bits_of_the_lfilter_it_replaced(a, innovations, y0):
    """``y[k] = a y[k-1] + e[k]``: the plain loop gives exactly scipy.signal.lfilter's doubles, so
    the world's paths (and every digest) did not move when scipy left the build path."""
    from scipy.signal import lfilter

    got = _ar1(a, innovations, y0)
    if len(innovations) == 0:
        assert got.shape == (0,)
        return
    want, _ = lfilter([1.0], [1.0, -a], innovations, zi=[a * y0])
    assert got.dtype == want.dtype and got.tobytes() == want.tobytes()
