"""The ``indb`` command line: ``main.py`` parses and dispatches; ``registry.py`` and
``governance.py`` hold the commands of those layers."""

from indb.cli.main import main  # noqa: F401 - the console script is indb.cli:main
