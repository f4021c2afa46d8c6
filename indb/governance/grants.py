"""Role-based access: ``indb grant``, ``indb revoke`` and ``indb grants``.

People are LOGIN roles granted one of indb's group roles::

    >>> import indb
    >>> indb.grant("scorer", "alice")                       # doctest: +SKIP
    'alice may now score every model (member of indb_scorer)'
    >>> indb.grant("scorer", "bob", model="churn")          # doctest: +SKIP
    'bob may now score churn only (member of indb_model_churn)'
    >>> indb.grants()                                       # doctest: +SKIP
    [Access(user='alice', ...), Access(user='bob', ...)]

A per-model grant makes (once) a NOLOGIN role ``indb_model_<name>`` that is a member
of ``indb_scorer_base`` (the shared entry points, the user's own log rows) and may
execute that model's functions only; every later deploy of the model grants its new
functions to that role too. ``indb grants`` reads effective privileges from the
catalog (role membership and ``has_function_privilege``), not from any list of indb's.

Granting needs a superuser, or a role with CREATEROLE that is also a member of
indb_deployer: the grant is recorded in the audit trail (``indb.audit_grant``, which
deployers may execute), and a per-model grant acts as indb_versions for the function grants.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from psycopg import sql

from indb import errors
from indb.catalog.connection import server_error, session
from indb.governance.hooks import SCORER_BASE, model_role
from indb.catalog.connection import as_versions

KINDS = {"deployer": "indb_deployer", "scorer": "indb_scorer", "auditor": "indb_auditor"}


@dataclass
class Access:
    """What one login role may do, read from the catalog."""

    user: str
    superuser: bool
    roles: list[str] = field(default_factory=list)  # indb group roles it is a member of, directly or not
    deploy: bool = False
    audit: bool = False
    models: list[str] = field(default_factory=list)  # models it may score
    login: bool = True  # False: a NOLOGIN group role (its members get what it may do)

    def __str__(self) -> str:
        if self.superuser:
            return f"{self.user}: superuser (everything)"
        parts = []
        if self.deploy:
            parts.append("deploys")
        if self.audit:
            parts.append("audits (reads the registry and the whole log)")
        if self.models:
            parts.append("scores " + ", ".join(self.models))
        who = self.user if self.login else f"{self.user} (group role)"
        return f"{who}: " + ("; ".join(parts) or "nothing")


def _check_kind(kind: str, model: str | None) -> str:
    if kind not in KINDS:
        raise errors.UsageError(f"unknown access {kind!r}: choose deployer, scorer or auditor")
    if model is not None and kind != "scorer":
        raise errors.UsageError("--model goes with scorer only (deployers and auditors act on every model)")
    return KINDS[kind]


def _require_user(conn, user: str) -> None:
    row = conn.execute("SELECT rolcanlogin FROM pg_catalog.pg_roles WHERE rolname = %s", [user]).fetchone()
    if row is None:
        raise errors.NotFoundError(f"role {user!r} does not exist: a DBA creates it first (CREATE ROLE {user} LOGIN ...)")
    if user.startswith("indb_"):
        raise errors.UsageError(f"{user!r} is one of indb's group roles; grant access to people (LOGIN roles)")


def _require_model(conn, model: str) -> None:
    if conn.execute("SELECT pg_catalog.to_regclass('indb.models') IS NULL").fetchone()[0]:
        raise errors.MigrationError("the indb catalog is not installed here: run `indb migrate` first")
    if conn.execute("SELECT 1 FROM indb.models WHERE name = %s", [model]).fetchone() is None:
        raise errors.NotFoundError(f"unknown model {model!r}: `indb models` lists the deployed models")


def grant(kind: str, user: str, *, model: str | None = None, dsn: str | None = None, conn=None) -> str:
    """Give ``user`` (a LOGIN role) the ``kind`` of access: deployer, scorer or auditor.

    With ``model`` (scorer only), ``user`` may score that model and no other.
    Returns a one-line description of what changed.
    """
    group = _check_kind(kind, model)
    with session(dsn, conn, "grant") as c:
        import psycopg

        try:
            with c.transaction():
                _require_user(c, user)
                if model is None:
                    c.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(group), sql.Identifier(user)))
                    _record(c, "grant", user, group, None)
                    what = {"deployer": "may now deploy, promote, roll back and retire models",
                            "scorer": "may now score every model",
                            "auditor": "may now read the registry and the whole prediction log"}[kind]
                    return f"{user} {what} (member of {group})"
                _require_model(c, model)
                role = model_role(model)
                if c.execute("SELECT pg_catalog.to_regrole(%s) IS NULL", [role]).fetchone()[0]:
                    c.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(role)))
                    c.execute(sql.SQL("COMMENT ON ROLE {} IS {}").format(
                        sql.Identifier(role), sql.Literal(f"indb: may score model {model}")))
                c.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(SCORER_BASE), sql.Identifier(role)))
                c.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(role), sql.Identifier(user)))
                _record(c, "grant", user, role, model)
                fns = [r[0] for r in c.execute(
                    "SELECT fn::oid::regprocedure::text FROM indb.version_functions WHERE model = %s", [model]).fetchall()]
                # the functions' owner grants them; the server's guard allows scorer roles only
                with as_versions(c):
                    for fn in fns:
                        # fn is regprocedure text printed by the catalog itself
                        c.execute(sql.SQL("GRANT EXECUTE ON FUNCTION {} TO {}").format(sql.SQL(fn), sql.Identifier(role)))
                return f"{user} may now score {model} only (member of {role})"
        except psycopg.errors.InsufficientPrivilege as e:
            raise errors.PermissionError(
                f"cannot grant {kind} to {user}: {e.diag.message_primary}; granting roles needs a superuser or CREATEROLE"
            ) from None
        except psycopg.Error as e:
            raise server_error(e) from None


def revoke(kind: str, user: str, *, model: str | None = None, dsn: str | None = None, conn=None) -> str:
    """Take back what :func:`grant` gave; returns a one-line description."""
    group = _check_kind(kind, model)
    with session(dsn, conn, "revoke") as c:
        import psycopg

        try:
            with c.transaction():
                _require_user(c, user)
                role = group if model is None else model_role(model)
                member = c.execute(
                    "SELECT EXISTS (SELECT FROM pg_catalog.pg_auth_members m WHERE m.roleid = pg_catalog.to_regrole(%s)"
                    " AND m.member = pg_catalog.to_regrole(%s))", [role, user]).fetchone()[0]
                if not member:
                    return f"{user} was not a member of {role}: nothing to revoke"
                c.execute(sql.SQL("REVOKE {} FROM {}").format(sql.Identifier(role), sql.Identifier(user)))
                _record(c, "revoke", user, role, model)
                left = [a for a in _access(c, user=user) if a.user == user]
                now = str(left[0]).split(": ", 1)[1] if left else "nothing"
                return f"{user} is no longer a member of {role}; now: {now}"
        except psycopg.errors.InsufficientPrivilege as e:
            raise errors.PermissionError(
                f"cannot revoke {kind} from {user}: {e.diag.message_primary}; needs a superuser or CREATEROLE") from None
        except psycopg.Error as e:
            raise server_error(e) from None


def _record(conn, action: str, user: str, role: str, model: str | None) -> None:
    """The grant or revoke in the audit trail, by the server (indb.audit_grant checks the
    membership really changed), in the same transaction as the change."""
    if conn.execute("SELECT pg_catalog.to_regprocedure('indb.audit_grant(text, text, text, text)') IS NULL").fetchone()[0]:
        raise errors.MigrationError("the indb catalog has no audit trail yet (core 0014): a superuser runs `indb migrate`")
    if not conn.execute("SELECT pg_catalog.has_function_privilege('indb.audit_grant(text, text, text, text)', 'EXECUTE')").fetchone()[0]:
        raise errors.PermissionError(
            f"cannot {action} {role}: indb records every grant in its audit trail, which needs a superuser or a member of "
            "indb_deployer (with CREATEROLE) to run indb grant / indb revoke")
    conn.execute("SELECT indb.audit_grant(%s, %s, %s, %s)", [action, user, role, model])


def _access(conn, *, user: str | None = None, model: str | None = None) -> list[Access]:
    people = conn.execute(
        "SELECT r.rolname, r.rolsuper,"
        " ARRAY(SELECT g.rolname FROM pg_catalog.pg_roles AS g"
        "       WHERE g.rolname LIKE 'indb\\_%%' AND g.rolname <> r.rolname AND pg_catalog.pg_has_role(r.oid, g.oid, 'MEMBER')"
        "       ORDER BY g.rolname), r.rolcanlogin"
        " FROM pg_catalog.pg_roles AS r"
        " WHERE (r.rolcanlogin OR (r.rolname NOT LIKE 'indb\\_%%' AND r.rolname NOT LIKE 'pg\\_%%'))"
        "   AND (%s::text IS NULL OR r.rolname = %s) ORDER BY r.rolname",
        [user, user]).fetchall()
    if conn.execute("SELECT pg_catalog.to_regclass('indb.version_functions') IS NULL").fetchone()[0]:
        raise errors.MigrationError("the indb catalog is not installed here: run `indb migrate` first")
    # may execute a live version's function and the shared entry point: may score it
    scoring = conn.execute(
        "SELECT r.rolname, f.model FROM pg_catalog.pg_roles AS r"
        " JOIN indb.version_functions AS f ON true JOIN indb.versions AS v ON v.model = f.model AND v.version = f.version"
        " WHERE (r.rolcanlogin OR (r.rolname NOT LIKE 'indb\\_%%' AND r.rolname NOT LIKE 'pg\\_%%'))"
        "   AND v.retired_at IS NULL AND (%s::text IS NULL OR r.rolname = %s)"
        "   AND (%s::text IS NULL OR f.model = %s)"
        "   AND pg_catalog.has_function_privilege(r.oid, f.fn::oid, 'EXECUTE')"
        "   AND pg_catalog.has_function_privilege(r.oid, 'indb.resolve(text)', 'EXECUTE')"
        " GROUP BY r.rolname, f.model ORDER BY r.rolname, f.model",
        [user, user, model, model]).fetchall()
    models: dict[str, list[str]] = {}
    for name, m in scoring:
        models.setdefault(name, []).append(m)
    out = []
    for name, superuser, roles, login in people:
        a = Access(name, superuser, list(roles),
                   deploy=superuser or "indb_deployer" in roles,
                   audit=superuser or "indb_auditor" in roles,
                   models=models.get(name, []), login=login)
        if superuser or a.deploy or a.audit or a.models or roles:
            if model is None or superuser or model in a.models:
                out.append(a)
    return out


def grants(*, user: str | None = None, model: str | None = None, dsn: str | None = None, conn=None) -> list[Access]:
    """Who may do what: every login role with any indb access (or ``user``; or those who may score ``model``)."""
    with session(dsn, conn, "grants", read_only=True) as c:
        import psycopg

        try:
            if model is not None:
                _require_model(c, model)
            return _access(c, user=user, model=model)
        except psycopg.Error as e:
            raise server_error(e) from None
