"""Float limits that the range analysis and the guards share (below both, used by both).

``INPUT_MAX`` and ``INPUT_MIN`` bound the *input domain* the guards are proved for:
finite inputs of magnitude 0 or within [1e-300, 1e300], plus +-Infinity, NULL and NaN.
The ``EXP_*`` limits are measured on this machine's libm and numpy, not assumed.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

DBL_MAX = float(np.finfo(np.float64).max)
DBL_TRUE_MIN = 5e-324
INPUT_MAX = 1e300
INPUT_MIN = 1e-300


def last_double(ok: Callable[[float], bool], good: float, bad: float) -> float:
    """The last double from ``good`` towards ``bad`` for which ``ok`` holds."""
    for _ in range(2000):
        mid = (good + bad) / 2
        if mid in (good, bad):
            break
        if ok(mid):
            good = mid
        else:
            bad = mid
    return good


def _exp_finite(x: float) -> bool:
    try:
        return math.isfinite(math.exp(x)) and math.isfinite(float(np.exp(x)))
    except OverflowError:
        return False


#: exp(x) is finite for x <= EXP_MAX_ARG (in libm and numpy) and non-zero for x >= EXP_MIN_ARG
EXP_MAX_ARG = last_double(_exp_finite, 709.0, 710.0)
EXP_MIN_ARG = last_double(lambda x: math.exp(x) > 0 and float(np.exp(x)) > 0, -745.0, -746.0)
