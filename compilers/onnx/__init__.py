"""The ONNX front end: an ONNX graph (``ai.onnx`` and ``ai.onnx.ml`` operators) to an ``ir.Model``.

    >>> import numpy as np
    >>> from sklearn.linear_model import LinearRegression
    >>> from skl2onnx import to_onnx
    >>> est = LinearRegression().fit(np.array([[0.0], [1.0]], dtype=np.float32), [1.0, 3.0])
    >>> m = compile_onnx(to_onnx(est, np.zeros((1, 1), dtype=np.float32)))
    >>> m.feature_names, m.output_kinds
    (('x0',), ('predict',))

How a graph is read
-------------------
Every value in the graph is a :class:`Tensor`. Initializers and ``Constant`` nodes are
numpy arrays and operators on them are evaluated with numpy in their own dtype (float32
stays float32, as onnxruntime computes it). A value that depends on the graph inputs is
*symbolic*: an object array of IR expressions, one per element of a row, with the batch
dimension (always axis 0) left implicit. Shapes are static; an operator whose output
shape depends on the data, or that mixes rows (anything along axis 0), is refused. A
``Shape`` that includes the batch axis may only feed ``Reshape`` (as "infer") and
``ConstantOfShape`` (a constant per row).

Graph inputs become features: a single input tensor of ``F`` columns gives
``x0 .. x{F-1}`` (or ``features``), several inputs keep their names (``name_j`` for the
columns of a multi-column input). Graph outputs become model outputs: an integer or
string output of one value per row is the label (``predict``); a float output beside it
holds the class probabilities (``proba``, in the order of the classifier's labels, which
a ``ZipMap`` or the classifier operator names); a lone float output of one value per
row is a regression (``predict``); anything else is ``transform`` (so are scores beside
a label that is not their ``ArgMax``, such as k-means distances).

Numbers: float32 and float64
----------------------------
onnxruntime computes a float32 graph in float32; the IR computes in float64. The
difference is confined to rounding (the tests allow 1e-6 relative) except where a
comparison decides something, so comparisons are made exact for the values a float32
graph can see:

* A split or comparison of a float32 input with a threshold ``t`` is
  ``float32(x) <= t`` (``<``, ``>=``, ``>``, ``==``, ``!=``, set membership). Rounding to
  float32 is monotonic, so each is folded at compile time into a float64 bound ``B``
  with ``x <= B`` (or its negation) holding exactly when the float32 comparison does,
  for every float64 ``x`` (``trees_shared.float32_le_bound``, ``float32_lt_bound``). On a
  graph input this is exact. On a computed value (a scaler before a tree) the IR's
  float64 value is rounded to float32 by the bound, which equals onnxruntime's unless
  its float32 arithmetic rounded to the other side of the threshold: such rows are
  within a few float32 ulps of a threshold.
* Float64 inputs (``tensor(double)``) are compared in float64 with the threshold as
  stored (onnxruntime widens float32 thresholds to double).
* Labels chosen by comparing two computed scores (``ArgMax``, a classifier's label)
  can differ from onnxruntime's only where the float32 scores tie or nearly tie. An
  ``ArgMax`` over a ``Softmax`` compares the softmax's inputs (same order, and far
  smaller SQL); an L1 ``Normalizer`` of a softmax is the softmax itself.
* ``Normalizer`` L2 squares in float32 in onnxruntime: a row whose values are all at
  most 2**-75 has a zero norm there and is left as it is, which the IR reproduces; a
  value whose square overflows float32 (|x| > 1.8e19) gives onnxruntime NaN (no answer).

Missing values
--------------
NaN (and SQL NULL) in a float input is NaN to onnxruntime: arithmetic propagates it, a
tree sends it where ``nodes_missing_value_tracks_true`` says (the false branch by
default; ``BRANCH_NEQ`` always takes the true branch, since ``NaN != t``), ``Imputer``
replaces it, ``ArgMax``/``ArgMin`` scan like onnxruntime (a NaN in first place wins,
any other NaN never does: :func:`scan_argmax`). Rows whose outputs onnxruntime computes
as NaN have no answer the IR has to reproduce; the IR gives NULL there. Operators that make onnxruntime fail on a value
(``Binarizer`` on NaN, ``OneHotEncoder`` with ``zeros=0`` on an unknown category) make
every output of that row missing (or raise, with ``on_missing="error"``).

Tree ensembles
--------------
``TreeEnsembleRegressor``, ``TreeEnsembleClassifier`` (ai.onnx.ml 1-3) and
``TreeEnsemble`` (ai.onnx.ml 5) become one ``ir.TreeEnsemble`` (one output per target or
class) whose splits are all ``x <= B``: ``BRANCH_LEQ``/``LT`` keep their children,
``GTE``/``GT`` swap them, ``EQ``/``NEQ`` and float32 ``BRANCH_MEMBER`` become two (or a
chain of) bound tests with the subtree they share copied; float64 membership becomes a
categorical split. ``BRANCH_MEMBER`` is accepted only for sets of integers 0..30, the
sets onnxruntime 1.32 tests exactly (for other sets it was measured to truncate the
input to an integer first). ``aggregate_function`` SUM and AVERAGE sum the trees (AVERAGE divides
by the number of trees); MIN and MAX take the least/greatest leaf over the trees that
give the target a weight. ``base_values`` are added after the aggregate. Post
transforms NONE, LOGISTIC, SOFTMAX and SOFTMAX_ZERO are implemented; PROBIT (an
approximate inverse error function in onnxruntime) is refused.

Classifiers follow onnxruntime's own rules (measured with onnxruntime 1.32), which
differ from the ONNX reference implementation for two classes:

* ``TreeEnsembleClassifier`` with more than two classes: score_k = sum of the class-k
  weights + base_k; label = the first largest score among the classes that received a
  weight (or have a base value); probabilities = post_transform(scores).
* Two labels and weights for class id 0 only (what skl2onnx and onnxmltools write): s =
  sum + base_values[0]; label = labels[1] when ``s > 0.5`` if every weight is >= 0, when
  ``s > 0`` otherwise (on the raw score, before any transform); probabilities are
  ``[1 - s, s]`` (weights all >= 0) or ``[-s, s]`` (mixed signs) for NONE, SOFTMAX and
  SOFTMAX_ZERO, which onnxruntime does not apply here, and ``[expit(-s), expit(s)]`` for
  LOGISTIC. Other two-class layouts (weights for class 1 only, for both classes, two
  base values) are refused: onnxruntime returns 0/1 instead of the labels for some of them.
* ``LinearClassifier`` with one coefficient row and two labels: s = x.w + b; label =
  labels[1] iff ``s > 0``; probabilities ``[1 - s, s]`` (NONE, SOFTMAX, SOFTMAX_ZERO) or
  ``[1 - expit(s), expit(s)]`` (LOGISTIC). With one row per class: label = the first
  largest raw score, probabilities = post_transform(scores).

Encoders
--------
``LabelEncoder`` and ``CategoryMapper`` map through a CASE of their keys (a float input
is compared in float32; a NaN key matches NaN from ai.onnx.ml 4 on, as in
onnxruntime); following an ``ArgMax`` they become an ``ArgMax`` over the mapped labels.
``OneHotEncoder`` on numbers truncates like onnxruntime's cast to int64. ONNX has no
missing text or integer: a NULL there makes the row's outputs missing.

Refused, by name: every operator not in :func:`supported_ops`, attributes a handler does
not know, control flow (``If``, ``Loop``, subgraph attributes), local functions, sparse
initializers, sequence/map inputs, inputs without a static column count, anything
that mixes rows (work along axis 0), computed shapes and indices into computed
tensors, PROBIT, the two-class classifier layouts above, and BRANCH_MEMBER sets
outside 0..30.

Layout
------
One module per operator family, each registering its handlers with :func:`register`
when this package is imported: ``elementwise`` (arithmetic, unary functions,
comparisons, logic, casts), ``linalg`` (MatMul, Gemm), ``reductions`` (Softmax, ArgMax,
Reduce*), ``shapes`` (Reshape, Gather, ...), and the ai.onnx.ml families ``linear``,
``preprocessing`` and ``trees``. They share ``core`` (tensors, nodes, the registry) and
``labels`` (argmax labels and lookups); ``graph`` walks the graph. The tree builder and
the float32 bounds live in ``indb.compilers.trees_shared``, which the XGBoost and
LightGBM converters use too.
"""

from __future__ import annotations

# importing each family registers its handlers
from indb.compilers.onnx import elementwise, linalg, linear, preprocessing, reductions, shapes, trees  # noqa: F401
from indb.compilers.onnx.core import Graph, Node, Tensor, register, supported_ops
from indb.compilers.onnx.graph import compile_onnx, load, rename_features
from indb.compilers.onnx.labels import argmax_items, lookup, relabel, scan_argmax
from indb.compilers.trees_shared import float32_le_bound, float32_lt_bound

__all__ = [
    "Graph",
    "Node",
    "Tensor",
    "argmax_items",
    "compile_onnx",
    "float32_le_bound",
    "float32_lt_bound",
    "load",
    "lookup",
    "register",
    "relabel",
    "rename_features",
    "scan_argmax",
    "supported_ops",
]
