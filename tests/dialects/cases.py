"""The small IRs every dialect's golden file covers, and rows that exercise their edges."""

from __future__ import annotations

import math

from indb import ir

X0, X1 = ir.Feature("x0"), ir.Feature("x1")
NAN, INF = math.nan, math.inf

#: 2.5 * x0 - 0.5 * x1 + 1.25 (a linear model)
LINEAR = ir.add(ir.mul(ir.const(2.5), X0), ir.mul(ir.const(-0.5), X1), ir.const(1.25))

#: a mean imputer: 3.0 where x0 is missing (NULL or NaN), else x0
IMPUTE = ir.case([(ir.IsMissing(X0), ir.const(3.0))], X0)

#: x0 / x1, guarded where the engine raises or gives NULL for x / 0
DIVIDE = ir.div(X0, X1)

#: one split on x0 <= 0.5 whose missing values go right (HistGradientBoosting's rule when
#: the training data had none), then one on x1 whose missing values go left
TREE = ir.TreeEnsemble(
    inputs=(X0, X1),
    trees=(
        ir.Tree(
            feature=(0, -1, 1, -1, -1),
            threshold=(0.5, 0.0, -1.5, 0.0, 0.0),
            left=(1, -1, 3, -1, -1),
            right=(2, -1, 4, -1, -1),
            missing_left=(False, False, True, False, False),
            value=((10.0,), (0.0,), (0.0,), (20.0,), (30.0,)),
        ),
    ),
    n_outputs=1,
    base=(0.0,),
)

#: the tree behind a NULL for any missing input (a GradientBoosting model, which refuses
#: NaN, is lowered so): inside the ELSE both inputs are present, so no split tests for NaN
GUARDED_TREE = ir.case([(ir.Or((ir.IsMissing(X0), ir.IsMissing(X1))), ir.const(None))], ir.Index(TREE, 0))

#: the label of the larger of two scores (a linear classifier's predict; a softmax keeps
#: the order, so its argmax is this): labels "no" / "yes", missing if a score is missing
ARGMAX = ir.ArgMax((ir.add(ir.mul(ir.const(0.5), X0), ir.const(1.0)), X1), ("no", "yes"))

#: exp overflows above 709.78, log(0) is -inf and log(x < 0) NaN, x ** 0.5 of x < 0 NaN
EXP = ir.func("exp", X0)
LOG = ir.func("log", X1)
POW = ir.func("pow", X1, ir.const(0.5))

#: a reserved word and a mixed-case name with a space as feature names
QUOTED = ir.add(ir.Feature("select"), ir.Feature("Order Total"))

ROWS_2 = [(0.0, 0.0), (1.0, 2.0), (0.5, -1.5), (-2.0, -1.5000000000000002), (None, 1.0), (1.0, None), (NAN, 1.0), (1.0, NAN),
          (INF, 1.0), (-INF, 1.0), (1e300, 1e-300), (800.0, 2.0), (-800.0, 0.5)]

#: the IR's max: missing if either argument is missing, NaN if either is NaN
MAX = ir.func("max", X0, X1)

#: a logistic output: 1 / (1 + exp(-x0)), whose exp overflows for x0 < -709.78
EXPIT = ir.func("expit", X0)

#: the first probability of a two-class softmax over (x0, x1): max, exp and a division
SOFTMAX = ir.softmax([X0, X1])[0]

#: one categorical split on x0 in {1, 2} whose missing values go left: a present value
#: outside the set goes right, a NaN must not
CATEGORIES = ir.TreeEnsemble(
    inputs=(X0,),
    trees=(
        ir.Tree(
            feature=(0, -1, -1),
            threshold=(0.0, 0.0, 0.0),
            left=(1, -1, -1),
            right=(2, -1, -1),
            missing_left=(True, False, False),
            value=((0.0,), (1.0,), (2.0,)),
            categories=((1.0, 2.0), None, None),
        ),
    ),
    n_outputs=1,
    base=(0.0,),
)

#: a model whose own constant is infinite (a threshold of +inf, a clip bound)
INF_CONST = ir.case([(ir.Compare("<=", X0, ir.const(INF)), ir.const(1.0))], ir.const(0.0))

#: a model whose output is a predicate (x0 > 1): a boolean in the select list
PREDICATE = ir.Model((ir.FeatureSpec("x0"),), (("predict", ir.Compare(">", X0, ir.const(1.0))),))
