"""``indb drift NAME``: the daily PSI of a model's features and prediction.

Reads the view ``indb.drift`` (migration 0007), which compares the rows in the
prediction log with the baseline stored at deploy (``indb deploy --baseline FILE``;
:mod:`indb.governance.baseline` makes one). Needs indb_auditor (or a superuser)::

    >>> import indb
    >>> rows = indb.drift("churn", days=14)               # doctest: +SKIP
    >>> indb.drift_chart(rows, "churn-drift.png")         # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass

from indb import errors
from indb.catalog.connection import server_error, session


@dataclass
class DriftRow:
    model: str
    version: int
    day: object  # datetime.date
    subject: str  # feature | prediction
    name: str
    rows: int
    psi: float
    status: str  # ok | watch | act


def drift(name: str, *, version: int | None = None, days: int | None = 30, dsn: str | None = None, conn=None) -> list[DriftRow]:
    """PSI per version, day and feature (and the prediction) of model ``name``, over the
    last ``days`` days (all logged days with ``None``)."""
    with session(dsn, conn, "drift", read_only=True) as c:
        import psycopg

        try:
            if c.execute("SELECT pg_catalog.to_regclass('indb.drift') IS NULL").fetchone()[0]:
                raise errors.MigrationError("this database has no drift views: a superuser runs `indb migrate`")
            known = c.execute("SELECT EXISTS (SELECT FROM indb.models WHERE name = %s)", [name]).fetchone()[0]
            if not known:
                raise errors.NotFoundError(f"unknown model {name!r}: `indb models` lists the deployed models")
            with_baseline = c.execute(
                "SELECT pg_catalog.count(*) FILTER (WHERE baseline IS NOT NULL) FROM indb.versions WHERE model = %s"
                " AND (%s::integer IS NULL OR version = %s)", [name, version, version]).fetchone()[0]
            if not with_baseline:
                raise errors.NotFoundError(
                    f"no version of {name!r} has a baseline to compare with: deploy it with --baseline FILE "
                    "(indb.governance.baseline.make_baseline writes one from the training data)")
            rows = c.execute(
                "SELECT model, version, day, subject, name, rows, psi, status FROM indb.drift"
                " WHERE model = %s AND (%s::integer IS NULL OR version = %s)"
                "   AND (%s::integer IS NULL OR day > (pg_catalog.now() AT TIME ZONE 'UTC')::date - %s::integer)"
                " ORDER BY version, day, subject DESC, name",
                [name, version, version, days, days]).fetchall()
        except psycopg.errors.InsufficientPrivilege:
            raise errors.PermissionError("indb drift reads the whole prediction log and the baselines: it needs "
                                         "indb_auditor (a DBA runs `indb grant auditor <you>`)") from None
        except psycopg.Error as e:
            raise server_error(e) from None
        return [DriftRow(*r) for r in rows]


def drift_chart(rows: list[DriftRow], path: str, *, title: str | None = None) -> str:
    """Write a PNG of the daily PSI per feature (and the prediction), with the 0.1 and
    0.25 thresholds; needs matplotlib (``pip install 'indb[drift]'``)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise errors.UsageError("writing a drift chart needs matplotlib: pip install 'indb[drift]'") from None
    if not rows:
        raise errors.UsageError("no drift to chart: nothing was logged for this model in the period")
    series: dict[str, list[tuple]] = {}
    for r in rows:
        label = f"{r.name} (v{r.version})" if r.subject == "feature" else f"prediction (v{r.version})"
        series.setdefault(label, []).append((r.day, r.psi))
    fig, ax = plt.subplots(figsize=(10, 5))
    for label, points in sorted(series.items()):
        points.sort()
        style = {"linewidth": 2.5, "color": "black"} if label.startswith("prediction") else {"linewidth": 1}
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=label, **style)
    ax.axhline(0.1, color="orange", linestyle="--", label="watch (0.1)")
    ax.axhline(0.25, color="red", linestyle="--", label="act (0.25)")
    ax.set_ylabel("PSI")
    ax.set_title(title or f"drift of {rows[0].model}")
    ax.legend(fontsize="small", ncol=2)
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
