"""Test-wide configuration: the database fixtures live in tests/db.py."""

import os

import pytest

# One thread per native pool (OpenMP, BLAS): the suite runs a worker per core, and
# HistGradientBoosting's OpenMP threads contending with the other worker (and PostgreSQL)
# made its fits 6x slower on two cores. The data are small: threads buy nothing here.
for _pool in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_pool, "1")

pytest_plugins = ["tests.db", "tests.spark_engine"]


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session, exitstatus):
    # Under CI a run that executed no test (everything skipped or deselected) must not
    # pass as green; pytest already exits 5 when nothing was collected.
    from tests.db import CI

    if not CI or exitstatus != 0 or hasattr(session.config, "workerinput"):
        return  # under pytest-xdist the controller counts what its workers ran
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None:
        return
    ran = sum(len(reporter.stats.get(key, [])) for key in ("passed", "failed", "error", "xfailed", "xpassed"))
    if ran == 0:
        reporter.write_line("CI=true and no test ran: failing the run", red=True)
        session.exitstatus = pytest.ExitCode.NO_TESTS_COLLECTED


def pytest_collection_modifyitems(config, items):
    # Under pytest-xdist (--dist loadgroup) every test of one zoo case runs on the same
    # worker, its Spark parity test included, so each case is fitted and compiled once per
    # run, not once per worker; every other test that uses Spark runs on one worker.
    from tests.zoo import ZooCase

    for item in items:
        params = getattr(item, "callspec", None)
        case = params.params.get("case") if params else None
        if isinstance(case, ZooCase):
            item.add_marker(pytest.mark.xdist_group(case.id))
        elif "spark" in getattr(item, "fixturenames", ()) or "spark" in item.nodeid.split("::")[0]:
            item.add_marker(pytest.mark.xdist_group("spark"))
