"""IR → SQL: the dialect table, the optimisation passes, the lowering to sqlglot, and
``indb compile`` (``compile.py``)."""
