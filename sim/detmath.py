"""Bit-reproducible elementary functions for values that feed the event log.

numpy picks its ``exp``/``log`` kernels by CPU (AVX-512 machines get other code than AVX2 ones),
and those kernels differ in the last bit, so a world built with ``np.exp`` differed between
machines. The functions here use only operations IEEE 754 rounds exactly (``+``, ``*``, ``rint``,
``ldexp``), one numpy ufunc call at a time, so every machine computes the same bits.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["exp"]

# Cody-Waite split of ln 2 (fdlibm): LN2_HI has its low 32 bits zero, so k * LN2_HI is exact for |k| < 2**20.
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
_INV_LN2 = 1.44269504088896338700e00
# Taylor coefficients 1/n! for n = 13..0; on |r| <= ln2/2 the first omitted term is < 5e-18.
_COEFFS = tuple(1.0 / math.factorial(n) for n in range(13, -1, -1))
_OVERFLOW = 709.782712893384  # largest x with a finite e**x
_UNDERFLOW = -745.1332191019412  # below it e**x rounds to 0


def exp(x: np.ndarray | float) -> np.ndarray:
    """``e**x`` elementwise, within 1.1 ulp of the exact value (tests/test_detmath.py) and the same
    bits on every machine."""
    x = np.asarray(x, dtype=np.float64)
    low, high = x < _UNDERFLOW, x > _OVERFLOW
    inside = ~(low | high | np.isnan(x))
    xs = np.where(inside, x, 0.0)
    k = np.rint(np.multiply(xs, _INV_LN2))
    r = np.subtract(np.subtract(xs, np.multiply(k, _LN2_HI)), np.multiply(k, _LN2_LO))
    p = np.full_like(r, _COEFFS[0])
    for c in _COEFFS[1:]:
        p = np.add(np.multiply(p, r), c)
    with np.errstate(over="ignore", under="ignore"):
        out = np.ldexp(p, k.astype(np.int64))
    return np.where(inside, out, np.where(low, 0.0, np.where(high, np.inf, np.nan)))
