"""pgspot over every migration and over the functions that deploys and binds generate."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from indb.registry.functions import ENTRY_POINTS
from tests.gov import deploy, make_source, train_gb, train_lr, train_text

REPO = Path(__file__).resolve().parent.parent
PGSPOT = Path(sys.executable).with_name("pgspot")
FINDING = re.compile(r"^(PS\d{3}): (.*)$")


def _run(*files: Path) -> tuple[dict[str, list[tuple[str, str]]], str]:
    """pgspot in append mode (the files run in order, as migrate runs them): findings per file."""
    run = subprocess.run([str(PGSPOT), "-a", "--ignore-lang", "plpython3u", *map(str, files)],
                         capture_output=True, text=True, timeout=300)
    found: dict[str, list[tuple[str, str]]] = {}
    current = None
    for line in run.stdout.splitlines():
        if line.endswith(": ") or line.endswith(":"):
            current = line.rstrip(": ")
            found.setdefault(current, [])
        m = FINDING.match(line.strip())
        if m and current:
            found[current].append((m.group(1), m.group(2)))
    assert "TOTAL:" in run.stdout, run.stdout + run.stderr
    return found, run.stdout


def _migrations() -> list[Path]:
    return sorted((REPO / "migrations").glob("[0-9]*.sql")) + sorted((REPO / "migrations" / "plpython").glob("[0-9]*.sql"))


def _definitions(tmp_path: Path) -> list[Path]:
    """The repeatable definitions as migrate applies them, after the migrations (the engine's is rendered)."""
    from indb.catalog.migrator import load_definitions

    out = []
    for component in ("core", "plpython"):
        for d in load_definitions(component):
            path = tmp_path / f"{component}_{d.filename}"
            path.write_text(d.text)
            out.append(path)
    return out


def test_every_migration_and_repeatable_definition_is_clean(tmp_path):
    found, out = _run(*_migrations(), *_definitions(tmp_path))
    assert not any(found.values()), out
    assert "TOTAL: Errors: 0 Warnings: 0 Unknown: 0" in out


def test_generated_functions_are_clean_but_for_ps005_on_the_inlinable_ones(migrated_dsn, migrated_conn, tmp_path):
    """Deploy models of every shape, bind a table, and lint the functions exactly as the
    database holds them. Inlinable functions cannot carry SET search_path (it stops
    inlining): PS005 is allowed on them only, and pgspot must find no unqualified
    operator or object in their bodies."""
    from indb.registry.versions import bind

    deploy(migrated_dsn, train_lr(), "lin")
    deploy(migrated_dsn, train_gb(), "trees")
    deploy(migrated_dsn, train_text(), "txt")
    deploy(migrated_dsn, train_gb(), "py", engine="plpython")
    make_source(migrated_conn, n=5)
    bind("lin", "src", dsn=migrated_dsn)
    bind("trees", "src", dsn=migrated_dsn)
    rows = migrated_conn.execute(
        "SELECT p.proname, pg_get_functiondef(p.oid) FROM pg_proc AS p"
        " WHERE p.pronamespace = 'indb'::regnamespace AND (p.proname LIKE '%%@%%/%%'"
        "   OR (p.proname = ANY (%s) AND p.proargtypes[1] <> 'record'::regtype)) ORDER BY 1", [list(ENTRY_POINTS)]).fetchall()
    inlinable = {name for name, _ in rows}
    assert {"lin@1/predict", "trees@1/proba", "txt@1/label", "py@1/predict", "predict"} <= inlinable
    generated = tmp_path / "generated.sql"
    generated.write_text("".join(ddl.rstrip() + ";\n\n" for _, ddl in rows))
    found, out = _run(*_migrations(), *_definitions(tmp_path), generated)
    assert not any(v for k, v in found.items() if k != str(generated)), out
    findings = found[str(generated)]
    # SQL-standard bodies (RETURN expr, core 0013) are parsed once at creation, so pgspot
    # has nothing to say about their search_path; a string body would be reported (PS005)
    assert all("RETURN " in ddl or "LANGUAGE plpgsql" in ddl for _, ddl in rows), out
    for code, message in findings:
        assert code == "PS005", (code, message)
        m = re.match(r"Function without explicit search_path: indb\.\"?([^\"(]+)\"?\(", message)
        assert m and m.group(1).strip('"') in inlinable, message
