"""The package as users get it: a wheel from a clean clone, and the two README commands."""

import os
import re
import subprocess
import sys
import sysconfig
import tempfile
import zipfile
from pathlib import Path

import joblib
import numpy as np
import psycopg
import pytest
from sklearn.linear_model import LinearRegression

from tests.helpers import REPO, clean_env


def _run(args, **kwargs) -> subprocess.CompletedProcess:
    run = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=600, **kwargs)
    assert run.returncode == 0, (args, run.stdout[-2000:], run.stderr[-2000:])
    return run


def _small_model(path):
    X = np.array([[1.0, 2.0], [3.0, 5.0], [4.0, 1.0], [0.0, 0.0]])
    model = LinearRegression().fit(X, X @ [2.0, -1.0] + 0.5)
    joblib.dump(model, path)
    return model


@pytest.mark.slow
def test_wheel_from_a_clean_clone_works_in_a_fresh_venv(tmp_path, pg_dsn):
    # What is committed is what ships: the clone has HEAD, not the working tree.
    clone, dist, venv = tmp_path / "clone", tmp_path / "dist", tmp_path / "venv"
    _run(["git", "clone", "--quiet", "--no-hardlinks", REPO, clone])
    _run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", dist, clone])
    [wheel] = dist.glob("indb-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "indb/migrations/0001_roles_and_schema.sql" in names
    assert "indb/migrations/plpython/0001_plpython3u.sql" in names
    assert "indb/compilers/converters.py" in names and "indb/cli/main.py" in names
    assert "indb/sql/41_compute_score.sql" in names and "indb/plpython/engine.py" in names
    # Nothing generic at the top level of site-packages, and no tests.
    assert {n.split("/")[0] for n in names} == {"indb", wheel.name.split("-py3")[0] + ".dist-info"}

    # A fresh environment that sees this one's dependencies (so nothing is downloaded
    # again) but not its editable indb: a .pth path entry does not run the editable
    # finder that lives in the same directory.
    _run([sys.executable, "-m", "venv", "--without-pip", venv])
    python = venv / "bin" / "python"
    site = _run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip()
    (tmp_path / "venv" / site.split(str(venv) + "/", 1)[1] / "indb_test_dependencies.pth").write_text(
        sysconfig.get_paths()["purelib"] + "\n")
    _run([sys.executable, "-m", "pip", "--python", python, "install", "--quiet", "--no-deps", "--ignore-installed", wheel])
    where = _run([python, "-c", "import indb, importlib.resources as r; print(indb.__file__);"
                  " print(r.files('indb.migrations') / 'plpython' / '0001_plpython3u.sql')"], cwd=tmp_path)
    assert all(line.startswith(str(venv)) for line in where.stdout.split()), where.stdout

    indb = venv / "bin" / "indb"
    dry = _run([indb, "--dsn", pg_dsn, "migrate", "--dry-run"], cwd=tmp_path, env=clean_env())
    assert "this would apply 0001_roles_and_schema.sql" in dry.stdout
    assert "CREATE SCHEMA indb AUTHORIZATION indb_owner;" in dry.stdout

    model = _small_model(tmp_path / "model.joblib")
    sql = _run([indb, "compile", tmp_path / "model.joblib", "--allow-pickle", "--features", "a,b", "--table", "t", "--keep", "id"],
               cwd=tmp_path, env=clean_env()).stdout
    rows = [(1, 0.5, -2.0), (2, 3.0, 7.25)]
    assert sql.startswith("BEGIN;\nSET LOCAL jit = off;") and sql.rstrip().endswith("COMMIT;")
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (id int, a float8, b float8)")
        conn.cursor().executemany("INSERT INTO t VALUES (%s, %s, %s)", rows)
        cur = conn.execute(sql)  # as printed: BEGIN, SET LOCAL, the SELECT, COMMIT
        cur.nextset()
        cur.nextset()
        got = sorted(cur.fetchall())
    want = model.predict(np.array([r[1:] for r in rows]))
    assert [g[0] for g in got] == [1, 2]
    assert np.allclose([g[1] for g in got], want, rtol=1e-12, atol=0)


def _readme_commands() -> list[str]:
    text = (REPO / "README.md").read_text()
    block = re.search(r"```sh\n(.*?)```", text, re.S).group(1)
    return [line.split("#")[0].strip() for line in block.splitlines() if line.split("#")[0].strip()]


def test_readme_opens_with_the_main_job_and_the_test_command():
    assert _readme_commands() == ["./scripts/demo", "./scripts/test"]
    for command in _readme_commands():
        assert (REPO / command).stat().st_mode & 0o111, command


def test_ci_runs_exactly_the_readme_test_command():
    lines = [line.strip() for line in (REPO / ".ci" / "run").read_text().splitlines()]
    commands = [line for line in lines if line and not line.startswith(("#", "set ", "cd "))]
    assert commands == [_readme_commands()[1]]


def test_test_command_fails_when_no_test_is_collected():
    run = subprocess.run([REPO / "scripts" / "test", "tests/test_packaging.py", "-k", "no_test_has_this_name",
                          "-p", "no:cacheprovider", "-q"], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert run.returncode == 5, run.stdout + run.stderr


@pytest.mark.parametrize("ci, code", [("true", 5), ("", 0)])
def test_a_ci_run_where_every_test_skipped_fails(tmp_path, ci, code):
    (tmp_path / "test_only_skips.py").write_text("import pytest\n\ndef test_x():\n    pytest.skip('nothing here')\n")
    run = subprocess.run([sys.executable, "-m", "pytest", "-p", "tests.conftest", "-p", "no:cacheprovider",
                          "--rootdir", tmp_path, tmp_path / "test_only_skips.py"],
                         cwd=REPO, env=clean_env(CI=ci), capture_output=True, text=True, timeout=120)
    assert run.returncode == code, run.stdout
    assert "1 skipped" in run.stdout
    assert ("no test ran" in run.stdout) == bool(ci)


def test_bootstrap_without_rights_prints_the_exact_apt_command():
    # A server whose PL/Python is missing, seen by a user who may not install packages
    # (outside pytest's tmp_path, which that user could not enter).
    with tempfile.TemporaryDirectory() as tmp:
        _bootstrap_without_rights(Path(tmp))


def _bootstrap_without_rights(tmp_path):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "postgres").write_text("#!/bin/sh\necho 'postgres (PostgreSQL) 99.1'\n")
    (bindir / "pg_config").write_text(f"#!/bin/sh\necho {tmp_path / 'lib'}\n")
    for path in (tmp_path, bindir, bindir / "postgres", bindir / "pg_config"):
        path.chmod(0o755)
    command = [str(REPO / "scripts" / "bootstrap"), "--server"]
    if os.geteuid() == 0:
        command = ["runuser", "-u", "nobody", "--", *command]
    elif subprocess.run(["sudo", "-n", "true"], capture_output=True).returncode == 0:
        pytest.skip("this user has password-less sudo, so bootstrap would really install")
    run = subprocess.run(command, env=clean_env(INDB_PG_BINDIR=str(bindir)), capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 1
    assert "sudo apt-get update && sudo apt-get install -y postgresql-plpython3-99" in run.stderr, run.stderr
