"""Model front ends: each module turns one family of models into IR (``indb.ir``).

Importing this package registers every converter; ``compile_model`` is the entry point.
"""

from indb.compilers import linear, pipeline, preprocessing, tree, ensemble  # noqa: F401  (registration)
from indb.compilers import boosters  # noqa: F401  (XGBoost and LightGBM, registered when those libraries are installed)
from indb.compilers import naive_bayes, cluster, neural, svm, outlier, meta, encoders, feature_selection  # noqa: F401  (registration)
from indb.compilers.converters import Compiled, Context, compile_estimator, compile_model, register, supported

__all__ = ["Compiled", "Context", "compile_estimator", "compile_model", "register", "supported"]
