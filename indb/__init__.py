"""indb: deploy trained machine-learning models into PostgreSQL.

Every command-line command is a Python function re-exported here (imported lazily, so
``import indb`` stays cheap).
"""

__version__ = "0.1.0"

_EXPORTS = {
    "compile_sql": "indb.compile",
    "compile_model": "indb.compilers",
    "IndbError": "indb.errors",
    "deploy": "indb.registry",
    "bind": "indb.registry",
    "models": "indb.registry",
    "promote": "indb.registry",
    "rollback": "indb.registry",
    "retire": "indb.registry",
    "migrate": "indb.migrator",
    "status": "indb.migrator",
    "validate": "indb.migrator",
    "score": "indb.scoring",
    "grant": "indb.access",
    "revoke": "indb.access",
    "grants": "indb.access",
    "log": "indb.predlog",
    "log_maintain": "indb.predlog",
    "log_prune": "indb.predlog",
    "drift": "indb.monitor",
    "drift_chart": "indb.monitor",
    "make_baseline": "indb.baseline",
    "resolve_dsn": "indb.db",
    "connect": "indb.db",
}


def __getattr__(name: str):
    mod = _EXPORTS.get(name)
    if mod is None:
        raise AttributeError(f"module 'indb' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(mod), name)


def __dir__():
    return sorted(list(globals()) + list(_EXPORTS))
