"""Issue 12, class 3: indb's own connections trust nothing on the search_path.

A login role with no indb grants plants, in schema public (which PUBLIC may create in, as
on PostgreSQL 14 and older), look-alike operators for every pair of types indb compares
and functions named like the ones indb calls. Each trap records who ran it. Then every
indb command runs as a superuser and as a deployer, with the planted schema first on
their search_path: no trap may run.
"""

from __future__ import annotations

import itertools

import pytest
from psycopg import sql

import indb
from tests.gov import connect, deploy, make_source, train_gb, train_lr

TYPES = ["name", "text", "oid", "regclass", "regtype", "regrole", "regprocedure", "regnamespace", "double precision",
         "integer", "bigint", "boolean", "jsonb", "\"char\"", "timestamp with time zone", "numeric", "character varying"]
OPERATORS = {"=": "eq", "<>": "ne", "<": "lt", ">": "gt", "<=": "le", ">=": "ge", "~": "re", "||": "cat"}
# names indb's SQL calls (qualified or not) with argument types close enough to win an
# overload resolution against pg_catalog's when public comes first
FUNCTIONS = {
    "set_config": ["text", "text", "boolean"], "current_setting": ["text"], "format": ["text", "text"],
    "to_regclass": ["text"], "to_regrole": ["text"], "to_regprocedure": ["text"], "quote_ident": ["text"],
    "pg_has_role": ["name", "name", "text"], "has_function_privilege": ["name", "oid", "text"],
    "has_column_privilege": ["text", "text", "text"], "pg_get_userbyid": ["oid"], "format_type": ["oid", "integer"],
    "array_agg": None, "now": [], "current_schema": [], "hashtextextended": ["text", "bigint"],
    "pg_advisory_xact_lock": ["bigint"], "pg_try_advisory_lock": ["bigint"], "length": ["text"], "lower": ["text"],
    "parse_ident": ["text"], "jsonb_build_object": ["text", "text"], "unnest": ["text[]"], "coalesce": None,
    "max": None, "count": None, "string_agg": None, "encode": ["bytea", "text"], "sha256": ["bytea"],
}


@pytest.fixture
def planted(migrated_dsn, migrated_conn, pg_role):
    """Traps in public, made by a stranger; returns a function reading who ran them."""
    stranger = pg_role(migrated_dsn)
    migrated_conn.execute("GRANT CREATE ON SCHEMA public TO PUBLIC")  # PostgreSQL 14's default
    migrated_conn.execute("CREATE TABLE public.canary (who text, what text)")
    migrated_conn.execute("GRANT INSERT, SELECT ON public.canary TO PUBLIC")
    with connect(stranger.dsn) as conn, conn.transaction():
        for (left, right), (op, tag) in itertools.product(itertools.permutations(TYPES, 2), OPERATORS.items()):
            fn = sql.Identifier("public", f"trap_{tag}_{TYPES.index(left)}_{TYPES.index(right)}")
            conn.execute(sql.SQL(
                "CREATE FUNCTION {fn}(a {l}, b {r}) RETURNS boolean LANGUAGE plpgsql AS $$"
                " BEGIN INSERT INTO public.canary VALUES (current_user, {what}); RETURN a::text = b::text; END $$").format(
                fn=fn, l=sql.SQL(left), r=sql.SQL(right), what=sql.Literal(f"{left} {op} {right}")))
            conn.execute(sql.SQL("CREATE OPERATOR public.{op} (LEFTARG = {l}, RIGHTARG = {r}, FUNCTION = {fn})").format(
                op=sql.SQL(op), l=sql.SQL(left), r=sql.SQL(right), fn=fn))
        for name, args in FUNCTIONS.items():
            if args is None:
                continue
            params = sql.SQL(", ").join(sql.SQL(f"a{i} {a}") for i, a in enumerate(args))
            conn.execute(sql.SQL(
                "CREATE FUNCTION public.{fn}({params}) RETURNS text LANGUAGE plpgsql AS $$"
                " BEGIN INSERT INTO public.canary VALUES (current_user, {what}); RETURN NULL; END $$").format(
                fn=sql.Identifier(name), params=params, what=sql.Literal(name)))
    # (this very query would run a trap through the planted oid = regnamespace, unqualified)
    n = migrated_conn.execute("SELECT count(*) FROM pg_catalog.pg_operator"
                              " WHERE oprnamespace OPERATOR(pg_catalog.=) 'public'::regnamespace::oid").fetchone()[0]
    assert n == len(TYPES) * (len(TYPES) - 1) * len(OPERATORS)
    assert migrated_conn.execute("SELECT count(*) FROM public.canary").fetchone()[0] == 0
    return lambda: migrated_conn.execute("SELECT who, what FROM public.canary").fetchall()


def _with_public_first(dsn: str) -> str:
    from psycopg.conninfo import make_conninfo

    return make_conninfo(dsn, options="-c search_path=public,pg_catalog")


@pytest.mark.parametrize("who", ["superuser", "deployer"])
def test_no_command_resolves_a_planted_operator_or_function(planted, migrated_dsn, migrated_conn, pg_role, who):
    make_source(migrated_conn, n=30)
    if who == "superuser":
        dsn = migrated_dsn
    else:
        role = pg_role(migrated_dsn, "indb_deployer", "indb_auditor", "indb_scorer")
        migrated_conn.execute(sql.SQL("GRANT SELECT ON public.src TO {0}; GRANT CREATE ON SCHEMA public TO {0};"
                                      " ALTER ROLE {0} CREATEROLE").format(sql.Identifier(role.name)))
        dsn = role.dsn
    scorer = pg_role(migrated_dsn)
    dsn = _with_public_first(dsn)
    # the same path reaches the deployer's own session: the trap is one call away
    with connect(dsn) as conn:
        assert conn.execute("SHOW search_path").fetchone()[0].startswith("public")

    indb.status(dsn)
    deploy(dsn, train_lr(), "m")
    deploy(dsn, train_gb(), "g", engine="plpython")
    deploy(dsn, train_lr().set_params(C=0.3).fit([[0, 0, 0], [1, 1, 1]], [0, 1]), "m", alias="staging")
    indb.bind("m", "src", dsn=dsn)
    indb.models(dsn=dsn)
    indb.promote("m", 2, dsn=dsn)
    indb.rollback("m", dsn=dsn)
    deploy(dsn, train_lr().set_params(C=0.1).fit([[0, 0, 0], [1, 1, 1]], [0, 1]), "m", promote=False)
    indb.retire("m", 3, dsn=dsn)
    indb.score("m", "src", "scored_m", dsn=dsn)
    indb.score("g", "src", "scored_g", dsn=dsn, key="id", sample=0.5)
    indb.grant("scorer", scorer.name, model="m", dsn=dsn)
    indb.grants(dsn=dsn)
    indb.revoke("scorer", scorer.name, model="m", dsn=dsn)
    indb.log(model="m", dsn=dsn)
    indb.log(calls=True, dsn=dsn)
    indb.log_maintain(dsn=dsn)
    with pytest.raises(indb.IndbError, match="baseline"):  # it reads the registry and the drift views first
        indb.drift("m", dsn=dsn)
    indb.validate(dsn)
    if who == "superuser":
        indb.migrate(dsn)
        indb.log_prune(older_than="400d", dsn=dsn)
    assert planted() == []
