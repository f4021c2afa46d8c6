"""The database side of indb's runtime: connections (``connection.py``), the migrations
runner (``migrator.py``) and the private local cluster (``localpg.py``)."""
