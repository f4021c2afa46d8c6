"""The model zoo: fitted models with hard test rows, shared by every parity test.

Each family module (``tests/zoo/linear.py``, ``tree.py``, ...) exposes ``CASES``, a list
of ``ZooCase``. A case fits lazily (once per test session) and returns the estimator and
the rows to score: ordinary rows plus the edge rows of that family (rows exactly on tree
thresholds and one float32/float64 ulp either side, NULL/NaN in every feature, unseen
categories, 0, +-1e300, +-Infinity). The end-to-end tests compile every case for every
engine and compare with the model's own ``predict``/``predict_proba``/``decision_function``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, Callable


@dataclass(frozen=True)
class ZooCase:
    id: str
    #: returns (fitted estimator, X) where X is a pandas DataFrame or a 2-D numpy array
    make: Callable[[], tuple[Any, Any]]
    #: the output kinds to check: "predict", "proba", "decision", "transform"
    outputs: tuple[str, ...] = ("predict",)
    #: relative tolerance for numbers (labels are always exact)
    rtol: float = 1e-9
    #: absolute tolerance near 0
    atol: float = 1e-12
    #: tags: "large" (slow to compile or score), "text" (has text features), ...
    tags: frozenset = field(default_factory=frozenset)
    #: how to compile what ``make`` returns (default: ``indb.compilers.compile_model``);
    #: e.g. ``compile_onnx`` for an ONNX graph
    compile: Callable[[Any], Any] | None = None
    #: the model's own answer, ``(model, X, kind) -> (outputs (n, k), refused rows mask)``
    #: (default: the estimator's own methods, ``tests.reference.own_output``); e.g.
    #: onnxruntime for an ONNX graph
    reference: Callable[[Any, Any, str], tuple] | None = None

    def fitted(self) -> tuple[Any, Any]:
        return _fit(self)

    def compiled(self) -> Any:
        """The ``ir.Model`` of the fitted model (compiled once per session)."""
        return _compiled(self)

    def expected(self, kind: str) -> Any:
        """The model's own answer for ``kind`` on the case's rows (``tests.reference.reference``),
        computed once per session: every engine's test compares with the same one."""
        return _expected(self, kind)


@functools.lru_cache(maxsize=None)
def _fit(case: ZooCase) -> tuple[Any, Any]:
    return case.make()


@functools.lru_cache(maxsize=None)
def _expected(case: ZooCase, kind: str) -> Any:
    from tests.reference import reference  # noqa: PLC0415

    est, X = case.fitted()
    return reference(est, case.compiled(), X, kind, own=case.reference)


@functools.lru_cache(maxsize=None)
def _compiled(case: ZooCase) -> Any:
    est, _ = case.fitted()
    if case.compile is not None:
        return case.compile(est)
    from indb.compilers import compile_model  # noqa: PLC0415

    return compile_model(est)


def all_cases() -> list[ZooCase]:
    """Every case of every family module in this package (modules listing ``CASES``)."""
    import importlib  # noqa: PLC0415
    import pkgutil  # noqa: PLC0415

    out: list[ZooCase] = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        mod = importlib.import_module(f"{__name__}.{info.name}")
        out.extend(getattr(mod, "CASES", []))
    ids = [c.id for c in out]
    dupes = {i for i in ids if ids.count(i) > 1}
    if dupes:
        raise ValueError(f"duplicate zoo case ids: {sorted(dupes)}")
    return out
