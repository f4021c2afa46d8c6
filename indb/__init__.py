"""indb: deploy trained machine-learning models into PostgreSQL.

Every command-line command is a Python function re-exported here (imported lazily, so
``import indb`` stays cheap).
"""

__version__ = "0.1.0"

_EXPORTS = {
    "compile_sql": "indb.sqlgen.compile",
    "compile_file": "indb.sqlgen.compile",
    "load_model_file": "indb.compilers.files",
    "compile_model": "indb.compilers",
    "IndbError": "indb.errors",
    "deploy": "indb.registry.versions",
    "bind": "indb.registry.versions",
    "unbind": "indb.registry.versions",
    "models": "indb.registry.versions",
    "promote": "indb.registry.versions",
    "rollback": "indb.registry.versions",
    "retire": "indb.registry.versions",
    "deploy_scripts": "indb.registry.scripts",
    "DeployResult": "indb.registry.versions",
    "PromoteResult": "indb.registry.versions",
    "RollbackResult": "indb.registry.versions",
    "RetireResult": "indb.registry.versions",
    "DeployScripts": "indb.registry.scripts",
    "model_card": "indb.registry.card",
    "attach_baseline": "indb.registry.card",
    "audit": "indb.governance.audit",
    "migrate": "indb.catalog.migrator",
    "status": "indb.catalog.migrator",
    "validate": "indb.catalog.migrator",
    "score": "indb.governance.score",
    "grant": "indb.governance.grants",
    "revoke": "indb.governance.grants",
    "grants": "indb.governance.grants",
    "log": "indb.governance.log",
    "log_maintain": "indb.governance.log",
    "log_prune": "indb.governance.log",
    "drift": "indb.governance.drift",
    "drift_chart": "indb.governance.drift",
    "make_baseline": "indb.governance.baseline",
    "resolve_dsn": "indb.catalog.connection",
    "connect": "indb.catalog.connection",
}


def __getattr__(name: str):
    mod = _EXPORTS.get(name)
    if mod is None:
        raise AttributeError(f"module 'indb' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(mod), name)


def __dir__():
    return sorted(list(globals()) + list(_EXPORTS))
