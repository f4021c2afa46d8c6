#!/usr/bin/env python3
"""Write docs/support-matrix.md: which model, output, engine and dialect indb is proven on.

Nothing in the table is written by hand. The rows come from the compiler's registry
(``indb.compilers.supported()``) and the model zoo (``tests/zoo``: which estimator
classes each case exercises, as the model itself or as a step or member of it, and
which outputs it checks); the cells come from the JUnit XML of a pytest run of the
parity tests::

    .venv/bin/pytest tests/test_parity.py tests/test_deploy_parity.py tests/test_parity_spark.py --junitxml=parity.xml
    .venv/bin/python scripts/support_matrix.py parity.xml            # -> docs/support-matrix.md

Columns: the IR evaluated by numpy (the oracle, and the PL/Python engine's code),
the SQL on PostgreSQL, DuckDB and SQLite (``tests/test_parity.py``), and on
PostgreSQL the deployed SQL and PL/Python engines (``tests/test_deploy_parity.py``), and
Spark SQL on a local Spark with ANSI mode on and off (``tests/test_parity_spark.py``).
A cell is "✓ n" when all n zoo cases that exercise the row passed there, "✗ k/n" when
k of them failed (their ids are listed below the table), "–" when none ran there.
Registered estimators that no zoo case exercises are listed as untested.
"""

from __future__ import annotations

import argparse
import re
import sys
import warnings
import xml.etree.ElementTree as ET
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

ROOT = Path(__file__).resolve().parent.parent

COLUMNS = [
    ("ir", "IR (numpy)"),
    ("postgres", "PostgreSQL SQL"),
    ("duckdb", "DuckDB SQL"),
    ("sqlite", "SQLite SQL"),
    ("deployed-sql", "PostgreSQL deployed SQL"),
    ("plpython", "PostgreSQL PL/Python"),
    ("spark", "Spark SQL (ANSI on and off)"),
]

# JUnit test name -> (column, case id); the engine suffix is part of pytest's id
PATTERNS = [
    (re.compile(r"^test_evaluator_matches_model\[(?P<case>.+)\]$"), lambda m: ("ir", m["case"])),
    (re.compile(r"^test_sql_matches_model\[(?P<case>.+)-(?P<engine>postgres|duckdb|sqlite)\]$"), lambda m: (m["engine"], m["case"])),
    (re.compile(r"^test_deployed_model_matches_its_own_answer\[(?P<case>.+)-sql\]$"), lambda m: ("deployed-sql", m["case"])),
    (re.compile(r"^test_deployed_model_matches_its_own_answer\[(?P<case>.+)-plpython\]$"), lambda m: ("plpython", m["case"])),
    (re.compile(r"^test_spark_matches_model\[(?P<case>.+)\]$"), lambda m: ("spark", m["case"])),
]

MEMBER = "as a step or member"


@dataclass
class Cell:
    passed: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


def read_results(paths: list[Path]) -> dict[tuple[str, str], str]:
    """(column, case id) -> "passed" | "failed" | "skipped", from JUnit XML files (later files win)."""
    out: dict[tuple[str, str], str] = {}
    for path in paths:
        for tc in ET.parse(path).getroot().iter("testcase"):
            name = tc.get("name", "")
            for pattern, key in PATTERNS:  # noqa: B007 - the matching key is used after the break
                m = pattern.match(name)
                if m:
                    break
            else:
                continue
            if tc.find("failure") is not None or tc.find("error") is not None:
                status = "failed"
            elif tc.find("skipped") is not None:
                status = "skipped"
            else:
                status = "passed"
            out[key(m)] = status
    return out


def exercised(est: Any) -> Iterator[tuple[str, bool]]:
    """(class name, is the model itself) for the estimator and every step/member compiled with it."""
    yield type(est).__name__, True
    for sub in _members(est):
        for name, _ in exercised(sub):
            yield name, False


def _members(est: Any) -> Iterator[Any]:
    # only containers whose converters compile their parts through the registry
    name = type(est).__name__
    if name == "Pipeline":
        yield from (s for _, s in est.steps if not (s is None or isinstance(s, str)))
    elif name == "ColumnTransformer":
        yield from (t for _, t, _ in est.transformers_ if not isinstance(t, str))
    elif name in ("VotingClassifier", "VotingRegressor", "StackingClassifier", "StackingRegressor"):
        yield from (m for m in est.estimators_ if not isinstance(m, str))
        if hasattr(est, "final_estimator_"):
            yield est.final_estimator_
    elif name == "CalibratedClassifierCV":
        yield from (cc.estimator for cc in est.calibrated_classifiers_)
    elif name == "FrozenEstimator":
        yield est.estimator
    elif name in ("RFE", "RFECV"):
        yield est.estimator_  # predicts on the selected columns


def case_uses(include_large: bool) -> dict[str, tuple[list[tuple[str, bool]], tuple[str, ...]]]:
    """case id -> (classes it exercises, outputs it checks), fitting each zoo case."""
    sys.path.insert(0, str(ROOT))
    from tests.zoo import all_cases

    out = {}
    for case in all_cases():
        if "large" in case.tags and not include_large:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est, _ = case.fitted()
        out[case.id] = (sorted(set(exercised(est)), key=lambda u: (not u[1], u[0])), tuple(case.outputs))
    return out


def build(results: dict[tuple[str, str], str], uses: dict, supported: list[str]) -> str:
    cells: dict[tuple[str, str], dict[str, Cell]] = defaultdict(lambda: {c: Cell() for c, _ in COLUMNS})
    for case_id, (classes, outputs) in uses.items():
        for cls, top in classes:
            kinds = outputs if top else (MEMBER,)
            for kind in kinds:
                for col, _ in COLUMNS:
                    status = results.get((col, case_id))
                    if status == "passed":
                        cells[(cls, kind)][col].passed.append(case_id)
                    elif status == "failed":
                        cells[(cls, kind)][col].failed.append(case_id)
    order = {k: i for i, k in enumerate(("predict", "proba", "decision", "transform", MEMBER))}
    rows = sorted(cells, key=lambda r: (r[0].lower(), order.get(r[1], 9)))
    lines = [
        "# Support matrix",
        "",
        "Generated by `scripts/support_matrix.py` from the compiler's registry, the model zoo",
        "(`tests/zoo`) and a pytest run of the parity tests; do not edit by hand. A cell is",
        "✓ n when the n zoo cases that exercise the row all matched the model's own answer",
        "there, ✗ k/n when k of them did not, – when none ran there. Outputs: predict,",
        "proba (predict_proba), decision (decision_function), transform.",
        "",
        f"From {len(results)} parity test results over {len(uses)} zoo cases.",
        "",
        "| estimator | output | " + " | ".join(title for _, title in COLUMNS) + " |",
        "|---|---|" + "---|" * len(COLUMNS),
    ]
    failures: dict[str, set[str]] = defaultdict(set)
    for cls, kind in rows:
        shown = []
        for col, title in COLUMNS:
            c = cells[(cls, kind)][col]
            n = len(c.passed) + len(c.failed)
            if not n:
                shown.append("–")
            elif c.failed:
                shown.append(f"✗ {len(c.failed)}/{n}")
                failures[title].update(c.failed)
            else:
                shown.append(f"✓ {n}")
        lines.append(f"| {cls} | {kind} | " + " | ".join(shown) + " |")
    if failures:
        lines += ["", "## Failing cases", ""]
        for _, title in COLUMNS:
            if failures.get(title):
                lines.append(f"- {title}: " + ", ".join(f"`{c}`" for c in sorted(failures[title])))
    covered = {cls for cls, _ in cells}
    untested = [s for s in supported if s not in covered]
    lines += ["", "## Registered but not exercised by any zoo case", ""]
    lines.append(", ".join(untested) if untested else "(none)")
    lines += ["", *limits_section()]
    return "\n".join(lines) + "\n"


def _limit(v: int | None) -> str:
    return "none" if v is None else f"{v:,}"


#: (title, what a cell shows for one ``Target``): the flags the lowering designs around
LIMIT_ROWS: list[tuple[str, Any]] = [
    ("expression depth (long sums balanced beyond half)", lambda t: _limit(t.max_depth)),
    ("CASE nesting (trees written as WHEN chains)", lambda t: _limit(t.max_case_nesting)),
    ("parser nesting in IR levels (deeper parts become derived columns)", lambda t: _limit(t.max_nesting)),
    ("columns in one SELECT", lambda t: _limit(t.max_columns)),
    ("trees per expression (running partial sums)", lambda t: _limit(t.max_trees_per_expression)),
    ("NaN", lambda t: ("ordered above numbers" if t.nan_is_greatest else "ordered as the IR needs") if t.has_nan else "none (missing is NULL)"),
    ("infinity", lambda t: {"cast": "'Infinity' cast", "overflow": "9e999", "function": "infinity() and nan()",
                            "none": "none: models that need it are refused",
                            "null": "none: models that need it are refused; an infinite result is NULL"}[t.inf_literal]),
    ("float errors (overflow, x/0, exp, ln)", lambda t: "raise: guarded" if t.float_errors_raise else ("x/0 and ln(0) NULL: guarded" if t.div_zero_is_null else "IEEE")),
    ("on_missing='error'", lambda t: f"{t.error_function}()" if t.error_function else (
        "--table script: pg_temp.indb_fail; expression: failing cast" if t.raise_by_cast and t.temp_fail_function
        else "failing cast" if t.raise_by_cast else "refused (no way to raise)")),
    ("max/min (ReLU)", lambda t: f"strict {t.strict_max}()" if t.strict_max else "strict MAX()/MIN()" if t.scalar_minmax_strict
     else "GREATEST behind a NULL test, arguments named once (--table)" if t.greatest else "searched CASE, arguments named once (--table)"),
    ("a classifier's NaN output", lambda t: "NULL, like its label" if t.has_nan and t.nan_is_greatest
     else "none (NULL)" if not t.has_nan else "NaN (golden SQL only)"),
    ("text equality", lambda t: "exact" if t.text_eq_exact else "case-insensitive by default"),
    ("literal parsing", lambda t: "16+ digit literals as exact products" if t.inexact_literals else "correctly rounded"),
]


def limits_section() -> list[str]:
    """Markdown lines: per dialect, the limits and semantics the lowering designs around,
    read from the flags of ``indb.sqlgen.dialects`` (one module per dialect states why)."""
    sys.path.insert(0, str(ROOT))
    from indb.sqlgen.dialects import REFUSED, TARGETS

    names = list(TARGETS)
    lines = [
        "## Per-dialect limits designed around",
        "",
        "From the flags in `indb/sqlgen/dialects/` (each module says where a number comes from).",
        "Executed in tests: postgres, duckdb, sqlite; the others are pinned by golden SQL.",
        "",
        "| limit | " + " | ".join(names) + " |",
        "|---|" + "---|" * len(names),
    ]
    for title, cell in LIMIT_ROWS:
        lines.append(f"| {title} | " + " | ".join(cell(TARGETS[n]) for n in names) + " |")
    lines += ["", "sqlglot dialects not offered, and why:", ""]
    lines += [f"- {name}: {why}" for name, why in sorted(REFUSED.items())]
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("junit", nargs="+", type=Path, help="JUnit XML files of pytest runs of the parity tests")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "support-matrix.md")
    ap.add_argument("--include-large", action="store_true", help="also fit the zoo cases tagged 'large'")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from indb.compilers import supported

    text = build(read_results(args.junit), case_uses(args.include_large), supported())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
