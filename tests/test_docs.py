"""Every module's docstring examples run (as sqlglot's tests/test_docs.py does).

Examples that need a database say ``# doctest: +SKIP``; the rest must hold as written.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import indb
import indb.compilers

# indb.compilers installs from compilers/ (its own path), so both trees are walked
MODULES = sorted({m.name for root, prefix in ((indb.__path__, "indb."), (indb.compilers.__path__, "indb.compilers."))
                  for m in pkgutil.walk_packages(root, prefix) if not m.name.endswith("__main__")})


def test_every_package_module_is_found():
    assert {"indb.ir.nodes", "indb.sqlgen.compile", "indb.catalog.migrator", "indb.compilers.linear",
            "indb.compilers.onnx.core"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert result.failed == 0, f"{name}: {result.failed} of {result.attempted} examples failed"
