"""The PL/Python engine: what runs inside PostgreSQL for ``--engine plpython`` versions
(``engine.py``, ``rowcode.py``, with ``indb.ir``), and the SQL that installs it
(``install.py``). Inside the database this package is created empty: keep this file
free of code."""
