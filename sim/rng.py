"""Named random streams from one root seed.

Every actor draws from a stream derived from ``SeedSequence(root, spawn_key=key(name))``, so
adding or removing an actor never shifts anyone else's draws. ``python(name)`` gives a fast
``random.Random`` for scalar draws on the hot path; ``numpy(name)`` a ``numpy`` Generator for
vectorised draws. Both come from the same named sequence, so they are reproducible.
"""

from __future__ import annotations

import hashlib
import random

import numpy as np


def name_key(name: str) -> tuple[int, ...]:
    """Stable 128-bit key of a name as four 32-bit words (independent of PYTHONHASHSEED)."""
    digest = hashlib.sha256(name.encode("utf-8")).digest()
    return tuple(int.from_bytes(digest[i : i + 4], "little") for i in range(0, 16, 4))


class RandomStreams:
    """Factory of named, independent random streams under one root seed.

    The root seed is any non-negative int (no size limit: Monte Carlo runs use 128-bit seeds) or
    a tuple of them (an entropy tuple); ``SeedSequence`` takes either as its entropy, so a small
    int seed keeps exactly the streams it always had.
    """

    def __init__(self, root_seed: int | tuple[int, ...]) -> None:
        if isinstance(root_seed, tuple | list):
            if not root_seed or any(int(w) < 0 for w in root_seed):
                raise ValueError("seed entropy must be a non-empty tuple of ints >= 0")
            self.root_seed: int | tuple[int, ...] = tuple(int(w) for w in root_seed)
        else:
            if root_seed < 0:
                raise ValueError("seed must be >= 0")
            self.root_seed = int(root_seed)

    def sequence(self, name: str) -> np.random.SeedSequence:
        return np.random.SeedSequence(self.root_seed, spawn_key=name_key(name))

    def python(self, name: str) -> random.Random:
        state = self.sequence(name).generate_state(4, np.uint64)
        return random.Random(int.from_bytes(state.tobytes(), "little"))

    def numpy(self, name: str) -> np.random.Generator:
        return np.random.Generator(np.random.PCG64(self.sequence(name).spawn(1)[0]))
