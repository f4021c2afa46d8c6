"""Converter for scikit-learn's ``TargetEncoder`` (its ``transform`` of new data).

``TargetEncoder.transform`` replaces each category by the encoding learned on the whole
training set (``encodings_``; the cross-fitted encodings of ``fit_transform`` only
exist for the training rows). A category not seen in training gets ``target_mean_``.
For a multiclass target every input column becomes one column per class, in
scikit-learn's order (input 0 class 0, input 0 class 1, ..., input 1 class 0, ...),
and unknown categories get the class's ``target_mean_``.

Missing values: a missing input matches the missing-value category when the encoder
saw one in training (NaN or None: like the other encoders, the IR cannot tell them
apart, so in an object column a NaN also matches a learned None); otherwise it is an
unknown category and gets ``target_mean_``, as in scikit-learn. Categories are all
strings or all numbers (see ``preprocessing.encoder_categories``). scikit-learn refuses +-inf
in a numeric column; the IR treats it as the unknown category it is.

    >>> import numpy as np
    >>> from sklearn.preprocessing import TargetEncoder
    >>> from indb.compilers import compile_model
    >>> X = np.array([["a"], ["b"]] * 10, dtype=object)
    >>> compile_model(TargetEncoder().fit(X, np.linspace(0.0, 1.0, 20))).output_kinds
    ('transform',)
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.preprocessing import TargetEncoder

from indb import ir
from indb.compilers.preprocessing import encoder_categories, feature_names_out
from indb.compilers.converters import Compiled, Context, register


@register(TargetEncoder)
def convert_target_encoder(est: Any, inputs: list[ir.Expr], ctx: Context) -> Compiled:
    """One column per input (per input and class for a multiclass target).

    >>> import numpy as np
    >>> from indb.compilers.converters import Context
    >>> t = TargetEncoder().fit(np.array([["a"], ["b"]] * 10, dtype=object), np.linspace(0.0, 1.0, 20))
    >>> convert_target_encoder(t, [ir.Feature("c")], Context(["c"])).transform[0].default.value == float(t.target_mean_)
    True
    """
    multiclass = est.target_type_ == "multiclass"
    n_classes = len(est.classes_) if multiclass else 1
    means = np.atleast_1d(np.asarray(est.target_mean_, dtype=np.float64))
    cats = [encoder_categories(est, i, x, ctx) for i, x in enumerate(inputs)]
    out: list[ir.Expr] = []
    for e_idx, encoding in enumerate(est.encodings_):
        cat = cats[e_idx // n_classes]
        whens = tuple((cat.matches([v]), ir.const(float(enc))) for v, enc in zip(cat.values, np.asarray(encoding, dtype=np.float64)))
        out.append(ir.Case(whens, ir.const(float(means[e_idx % n_classes]))))
    return Compiled(transform=out, names=feature_names_out(est))
