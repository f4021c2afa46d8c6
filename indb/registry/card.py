"""A model card (``indb models show NAME[@VERSION|@ALIAS]``) and attaching a baseline later
(``indb baseline NAME@V FILE``).

The card is read from the registry only: the features in model order with their types,
the outputs and the class order of ``predict_proba``, the engine and why it was chosen,
the checksums of the artifact and the IR, where the model came from (source URI, MLflow
run, the run's metrics), the drift baseline's summary, the aliases with their history,
and who deployed and retired it when::

    >>> import indb
    >>> print(indb.model_card("churn@2").render("markdown"))   # doctest: +SKIP
    # churn@2
    ...
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from indb import errors
from indb.catalog.connection import server_error, session

FORMATS = ("text", "json", "markdown")


@dataclass
class ModelCard:
    model: str
    version: int
    aliases: list[str]
    features: list[dict[str, Any]]  # {position, name, type}
    outputs: list[str]
    classes: list[Any] | None
    engine: str
    engine_reason: str
    artifact_sha256: str
    ir_sha256: str
    source_uri: str | None
    run_id: str | None
    metrics: dict[str, float] | None
    baseline: dict[str, Any] | None  # summary: {features: {name: kind}, prediction: kind}
    created_by: str
    created_at: str
    retired_by: str | None
    retired_at: str | None
    functions: list[str] = field(default_factory=list)
    bindings: list[str] = field(default_factory=list)
    alias_history: list[dict[str, Any]] = field(default_factory=list)  # of every alias of the model

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def render(self, fmt: str = "text") -> str:
        if fmt not in FORMATS:
            raise errors.UsageError(f"--format must be one of {', '.join(FORMATS)}, not {fmt!r}")
        if fmt == "json":
            return json.dumps(self.as_dict(), indent=2, default=str)
        md = fmt == "markdown"
        head = f"# {self.model}@{self.version}" if md else f"{self.model}@{self.version}"
        lines = [head, ""] if md else [head]

        def section(title: str) -> None:
            lines.extend(["", f"## {title}", ""] if md else [f"{title}:"])

        def item(key: str, value: Any) -> None:
            lines.append(f"- **{key}**: {value}" if md else f"  {key + ':':<11} {value}")

        state = f"retired {self.retired_at} by {self.retired_by}" if self.retired_at else "live"
        for key, value in (("aliases", ", ".join(self.aliases) or "(none)"), ("state", state),
                           ("deployed", f"{self.created_at} by {self.created_by}"),
                           ("engine", f"{self.engine} ({self.engine_reason})"),
                           ("artifact", f"sha256 {self.artifact_sha256}"), ("IR", f"sha256 {self.ir_sha256}"),
                           ("source", self.source_uri or "(not recorded)"), ("run", self.run_id or "(none)")):
            item(key, value)
        section("features (in model order)")
        if md:
            lines.extend(["| # | name | type |", "|---|---|---|"])
            lines.extend(f"| {f['position']} | {f['name']} | {f['type']} |" for f in self.features)
        else:
            lines.extend(f"  {f['position']:>3}  {f['name']}  {f['type']}" for f in self.features)
        section("outputs")
        item("kinds", ", ".join(self.outputs))
        if self.classes is not None:
            item("classes", ", ".join(map(str, self.classes)) + "  (the order of predict_proba)")
        section("metrics (of the run)")
        if self.metrics:
            for k in sorted(self.metrics):
                item(k, self.metrics[k])
        else:
            item("metrics", "(none recorded)")
        section("drift baseline")
        if self.baseline:
            for name, kind in self.baseline["features"].items():
                item(name, kind)
            if self.baseline.get("prediction"):
                item("prediction", self.baseline["prediction"])
        else:
            item("baseline", "(none: `indb baseline NAME@V FILE` attaches one)")
        section("functions")
        for fn in self.functions:
            lines.append(f"- `{fn}`" if md else f"  {fn}")
        if self.bindings:
            item("bound to", ", ".join(self.bindings))
        section("alias history")
        for h in self.alias_history:
            move = f"{h['alias']}: {h['from'] if h['from'] is not None else '-'} -> {h['to'] if h['to'] is not None else '(dropped)'}"
            lines.append(f"- {h['at']} {h['action']} {move} by {h['by']}" if md else f"  {h['at']}  {h['action']:<8} {move}  by {h['by']}")
        return "\n".join(lines) + "\n"


def _resolve(c, ref: str) -> tuple[str, int]:
    name, at, rest = ref.partition("@")
    if c.execute("SELECT 1 FROM indb.models WHERE name = %s", [name]).fetchone() is None:
        raise errors.NotFoundError(f"unknown model {name!r}: `indb models` lists the deployed models")
    if at and rest.isdigit():
        row = c.execute("SELECT version FROM indb.versions WHERE model = %s AND version = %s", [name, int(rest)]).fetchone()
        if row is None:
            raise errors.NotFoundError(f"model {name!r} has no version {rest}: `indb models {name}` lists its versions")
        return name, row[0]
    alias = rest if at else "champion"
    row = c.execute("SELECT version FROM indb.aliases WHERE model = %s AND alias = %s", [name, alias]).fetchone()
    if row is None:
        raise errors.NotFoundError(f"model {name!r} has no alias {alias!r}: name a version ({name}@N) or an alias")
    return name, row[0]


def _baseline_summary(baseline: dict | None) -> dict | None:
    if not baseline:
        return None
    feats = {n: (s or {}).get("kind", "?") for n, s in (baseline.get("features") or {}).items()}
    pred = baseline.get("prediction")
    return {"features": feats, "prediction": (pred or {}).get("kind") if pred else None}


def model_card(ref: str, *, dsn: str | None = None, conn=None) -> ModelCard:
    """The card of ``ref``: ``name@3``, ``name@staging`` or ``name`` (its champion)."""
    with session(dsn, conn, "models show", read_only=True) as c:
        import psycopg

        try:
            if c.execute("SELECT pg_catalog.to_regclass('indb.audit') IS NULL").fetchone()[0]:
                raise errors.MigrationError("the indb catalog is missing or older than this indb: run `indb migrate`")
            name, version = _resolve(c, ref)
            (features, outputs, classes, engine, reason, artifact, ir_sha, source, run, metrics, baseline,
             created_by, created_at, retired_by, retired_at) = c.execute(
                "SELECT features, outputs, classes, engine, COALESCE(engine_reason, ''), artifact_sha256, ir_sha256, source_uri,"
                " run_id, metrics, baseline, created_by, created_at, retired_by, retired_at"
                " FROM indb.versions WHERE model = %s AND version = %s", [name, version]).fetchone()
            aliases = [r[0] for r in c.execute(
                "SELECT alias FROM indb.aliases WHERE model = %s AND version = %s ORDER BY alias", [name, version])]
            functions = [r[0] for r in c.execute(
                "SELECT fn::text FROM indb.version_functions WHERE model = %s AND version = %s ORDER BY output", [name, version])]
            bindings = [r[0] for r in c.execute(
                "SELECT rowtype::text FROM indb.bindings WHERE model = %s ORDER BY 1", [name])]
            history = [dict(zip(("alias", "from", "to", "action", "by", "at"), (*r[:5], str(r[5])))) for r in c.execute(
                "SELECT alias, from_version, to_version, action, moved_by, moved_at FROM indb.alias_history"
                " WHERE model = %s ORDER BY id", [name])]
        except psycopg.errors.InsufficientPrivilege:
            raise errors.PermissionError("indb models show reads the whole registry entry: it needs indb_auditor or "
                                         "indb_deployer (a DBA runs `indb grant auditor <you>`)") from None
        except psycopg.Error as e:
            raise server_error(e) from None
    return ModelCard(
        name, version, aliases, [{"position": i + 1, "name": n, "type": k} for i, (n, k) in enumerate(features)],
        list(outputs), classes, engine, reason, artifact, ir_sha, source, run, metrics, _baseline_summary(baseline),
        created_by, str(created_at), retired_by, None if retired_at is None else str(retired_at),
        functions, bindings, history)


def attach_baseline(ref: str, baseline: Any, *, dsn: str | None = None, conn=None) -> str:
    """Attach (or replace) the drift baseline of ``name@V`` (a JSON file or a dict); it is
    checked against the version's features first. Returns a one-line description."""
    from indb.governance.baseline import validate_baseline
    from indb.registry.versions import _read_baseline, _registry_txn, _lock_model

    text = _read_baseline(baseline)
    name = ref.partition("@")[0]
    with _registry_txn(dsn, "baseline", conn, model=name) as c:
        _lock_model(c, name)
        name, version = _resolve(c, ref)
        features, old = c.execute("SELECT features, baseline FROM indb.versions WHERE model = %s AND version = %s",
                                  [name, version]).fetchone()
        problems = validate_baseline(json.loads(text), [f[0] for f in features])
        if problems:
            raise errors.UsageError(f"baseline for {name}@{version}: " + "; ".join(problems)
                                    + " (indb.governance.baseline.make_baseline writes a valid one)")
        if old == json.loads(text):
            return f"{name}@{version} already has this baseline: nothing changed"
        c.execute("UPDATE indb.versions SET baseline = %s WHERE model = %s AND version = %s", [text, name, version])
        return f"{name}@{version}: baseline {'replaced' if old is not None else 'attached'}; `indb drift {name}` compares with it"
