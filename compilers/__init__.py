"""Model front ends: each module turns one family of models into IR (``indb.ir``).

``compile_model`` is the entry point. Importing this package is cheap: the family modules
(and the libraries they read: scikit-learn, XGBoost, LightGBM) are imported, registering
their converters, the first time a model is compiled (``converters.load_families``).
"""

from indb.compilers.converters import Compiled, Context, compile_estimator, compile_model, register, supported

__all__ = ["Compiled", "Context", "compile_estimator", "compile_model", "register", "supported"]
