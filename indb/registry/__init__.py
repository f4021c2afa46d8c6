"""The model registry: versions, aliases and bindings (``versions.py``) and the SQL
functions a deploy installs (``functions.py``)."""
