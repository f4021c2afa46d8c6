"""Float limits that the range analysis and the guards share (below both, used by both).

``INPUT_MAX`` and ``INPUT_MIN`` bound the *input domain* the guards are proved for:
finite inputs of magnitude 0 or within [1e-300, 1e300], plus +-Infinity, NULL and NaN.
The ``EXP_*`` limits are measured on this machine's libm and numpy, not assumed.
"""

from __future__ import annotations

import math
import struct
from typing import Callable

import numpy as np

DBL_MAX = float(np.finfo(np.float64).max)
DBL_TRUE_MIN = 5e-324
INPUT_MAX = 1e300
INPUT_MIN = 1e-300


def _order(x: float) -> int:
    """An integer that orders doubles like their values (-0.0 and 0.0 are both 0)."""
    (i,) = struct.unpack("<q", struct.pack("<d", x))
    return i if i >= 0 else -(i & 0x7FFFFFFFFFFFFFFF)


def _from_order(k: int) -> float:
    bits = k if k >= 0 else (-k) | -0x8000000000000000
    return struct.unpack("<d", struct.pack("<q", bits))[0]


def last_double(ok: Callable[[float], bool], good: float, bad: float) -> float:
    """The last double from ``good`` towards ``bad`` for which ``ok`` holds.

    Bisects the doubles themselves (their ordered bit patterns), so it takes at most
    64 steps: bisecting values from 0 to 1 towards 5e-324 took over a thousand.

    >>> last_double(lambda x: x * 0.5 == 0.0, 0.0, 1.0)
    5e-324
    >>> last_double(lambda x: x < 1.0, 0.0, 2.0) == math.nextafter(1.0, 0.0)
    True
    """
    lo, hi = _order(good), _order(bad)
    while abs(hi - lo) > 1:
        mid = (lo + hi) // 2
        if ok(_from_order(mid)):
            lo = mid
        else:
            hi = mid
    return _from_order(lo)


def _exp_finite(x: float) -> bool:
    try:
        return math.isfinite(math.exp(x)) and math.isfinite(float(np.exp(x)))
    except OverflowError:
        return False


#: exp(x) is finite for x <= EXP_MAX_ARG (in libm and numpy) and non-zero for x >= EXP_MIN_ARG
EXP_MAX_ARG = last_double(_exp_finite, 709.0, 710.0)
EXP_MIN_ARG = last_double(lambda x: math.exp(x) > 0 and float(np.exp(x)) > 0, -745.0, -746.0)
