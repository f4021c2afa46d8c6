"""One exception tree. Every message names the object and says what to do.

The command line prints ``str(error)`` as one line and exits non-zero; ``--debug``
shows the traceback.
"""


class IndbError(Exception):
    """Base of every error indb raises on purpose."""

    exit_code = 1


class UsageError(IndbError):
    """The command was called wrongly (missing file, bad option value)."""

    exit_code = 2


class UnsupportedModelError(IndbError):
    """The model, one of its steps, or an option of it has no compiler."""


class CompileError(IndbError):
    """The model is supported but cannot be lowered as asked (dialect limit, bad feature list)."""


class ConnectionError(IndbError):  # noqa: A001 - deliberately shadows the builtin inside indb
    """The database cannot be reached or refused the login."""


class MigrationError(IndbError):
    """A catalog migration failed or the catalog is in a state the code cannot handle."""


class ChecksumMismatch(MigrationError):
    """An applied migration file, or a stored IR, no longer matches its checksum."""


class LockTimeout(IndbError):
    """Another process held the lock for longer than the timeout."""


class PermissionError(IndbError):  # noqa: A001
    """The current role lacks a privilege; the message names the grant that is missing."""


class NotFoundError(IndbError):
    """An unknown model, version, alias or table."""


class IntegrityError(IndbError):
    """Stored data failed a checksum or consistency check."""


class UntrustedFileError(UsageError):
    """A model file whose loading could run code (pickle, unknown skops types) without the opt-in."""
