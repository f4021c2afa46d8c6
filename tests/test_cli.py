"""The command line: where the DSN comes from, and one clear line for every failure."""

import argparse

import pytest

from indb.cli.main import build_parser
from indb.catalog.localpg import free_port
from tests.helpers import clean_env, indb, one_line_error


def test_unreachable_server_gets_one_line(tmp_path):
    dsn = f"host=127.0.0.1 port={free_port()} dbname=nowhere user=nobody connect_timeout=5"
    for command in (["migrate"], ["status"], ["validate"], ["migrate", "--dry-run"]):
        run = indb("--dsn", dsn, *command)
        line = one_line_error(run)
        assert run.returncode == 1 and run.stdout == ""
        assert line.startswith("indb: error: cannot connect to host=127.0.0.1")
        assert "Connection refused" in line and "check --dsn / INDB_DSN" in line


def test_wrong_database_name_gets_one_line(pg_server):
    line = one_line_error(indb("--dsn", pg_server.dsn("no_such_database_here"), "status"))
    assert 'database "no_such_database_here" does not exist' in line and "createdb" in line


def test_wrong_password_gets_one_line(pg_dsn, pg_role):
    role = pg_role(pg_dsn)
    wrong = role.dsn.replace(role.password, "not-the-password")
    line = one_line_error(indb("--dsn", wrong, "status"))
    assert "password authentication failed" in line and "fix the user or password" in line
    assert "not-the-password" not in line


def test_malformed_dsn_is_a_usage_error():
    run = indb("--dsn", "this is not a dsn", "status")
    assert run.returncode == 2
    assert "invalid connection string from --dsn" in one_line_error(run)


def test_role_without_rights_gets_one_line(pg_dsn, migrated_dsn, pg_role):
    nobody = pg_role(pg_dsn)
    line = one_line_error(indb("--dsn", nobody.dsn, "migrate"))
    # refused before anything runs (core 0013 and the repeatable definitions need a superuser)
    assert "permission denied" in line and "must be run by a superuser" in line

    outsider = pg_role(migrated_dsn)
    line = one_line_error(indb("--dsn", outsider.dsn, "status"))
    assert "permission denied for table schema_migrations" in line or "permission denied for schema indb" in line

    # a deployer may read the status
    deployer = pg_role(migrated_dsn, "indb_deployer")
    assert indb("--dsn", deployer.dsn, "status").returncode == 0


def test_deployer_cannot_install_the_plpython_component(pg_dsn, pg_role):
    assert indb("--dsn", pg_dsn, "migrate").returncode == 0
    deployer = pg_role(pg_dsn, "indb_deployer")
    run = indb("--dsn", deployer.dsn, "migrate", "--component", "plpython")
    line = one_line_error(run)
    # refused before anything runs: the component's files need a superuser
    assert "permission denied to apply plpython migration" in line and "must be run by a superuser" in line
    assert "nothing was applied" in line


def test_no_dsn_anywhere_is_a_usage_error(tmp_path):
    run = indb("status", cwd=tmp_path, env=clean_env())
    assert run.returncode == 2
    assert "no database given: pass --dsn, set INDB_DSN" in one_line_error(run)


def test_private_cluster_dsn_is_found_from_a_subdirectory(pg_dsn, tmp_path):
    (tmp_path / ".indb").mkdir()
    (tmp_path / ".indb" / "dsn").write_text(pg_dsn + "\n")
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    run = indb("migrate", cwd=deep, env=clean_env())
    assert run.returncode == 0, run.stderr
    status = indb("status", cwd=deep, env=clean_env())
    assert f"(from {tmp_path / '.indb' / 'dsn'})" in status.stdout
    # INDB_DSN and libpq's variables take precedence over the private cluster.
    env = clean_env(PGHOST="127.0.0.1", PGPORT=str(free_port()), PGCONNECT_TIMEOUT="5")
    line = one_line_error(indb("status", cwd=deep, env=env))
    assert "(from the libpq environment (PGHOST))" in line


def test_stopped_private_cluster_says_how_to_start_it(tmp_path):
    (tmp_path / ".indb").mkdir()
    (tmp_path / ".indb" / "dsn").write_text(f"host=127.0.0.1 port={free_port()} dbname=indb user=postgres\n")
    line = one_line_error(indb("status", cwd=tmp_path, env=clean_env()))
    assert "./scripts/localpg start" in line


def test_dsn_and_debug_work_after_the_command_too(tmp_path):
    dsn = f"host=127.0.0.1 port={free_port()} dbname=x user=x connect_timeout=5"
    run = indb("status", "--dsn", dsn, "--debug")
    assert run.returncode == 1
    assert "Traceback" in run.stderr and run.stderr.strip().splitlines()[-1].startswith("indb: error: cannot connect")


def test_help_teaches_with_examples():
    run = indb("--help")
    assert run.returncode == 0
    assert "examples:" in run.stdout and "indb migrate --component plpython" in run.stdout
    assert "INDB_DSN" in run.stdout and ".indb/dsn" in run.stdout
    for command in DESIGN_COMMANDS:
        sub = indb(command, "--help")
        assert sub.returncode == 0 and "example" in sub.stdout, command


# every command of DESIGN.md's command-line contract (audit and baseline: issue 15), and
# spark-score (issue 16: batch scoring on Spark with a registered version)
DESIGN_COMMANDS = ("audit", "baseline", "bind", "compile", "deploy", "drift", "grant", "grants", "log", "migrate", "models",
                   "promote", "retire", "revoke", "rollback", "score", "spark-score", "status", "unbind", "validate")


def test_the_design_commands_are_registered_and_nothing_else():
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert sorted(commands.choices) == sorted(DESIGN_COMMANDS)


def test_compile_options_are_parsed_per_the_contract():
    args = build_parser().parse_args(["compile", "m.onnx", "--output", "proba", "--features", "a,b",
                                      "--table", "t", "--keep", "id,region", "--on-missing", "error"])
    assert (args.model, args.dialect, args.output, args.features, args.table, args.keep, args.on_missing) == (
        "m.onnx", "postgres", "proba", ["a", "b"], "t", ["id", "region"], "error")
    with pytest.raises(SystemExit):
        build_parser().parse_args(["compile", "m.onnx", "--output", "bogus"])
