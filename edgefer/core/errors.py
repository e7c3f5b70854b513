"""One base for every error a user can fix.

An `EdgeferError` is about the user's input or machine (a bad file, a wrong option, an unwritable
folder); its message names the thing and the fix, and the command-line tools print it on one line
and exit with status 2. Every other exception is a bug in edgefer and keeps its traceback.
Subclasses also derive from the built-in error they refine (ValueError, FileNotFoundError, ...).
"""


class EdgeferError(Exception):
    pass


class NotWritable(EdgeferError, PermissionError):
    """An output that cannot be written; raised before any long work starts."""


class OutputFailed(EdgeferError, OSError):
    """An output that could not be written while the run went on (a full disk): what was written
    before is kept whole, and the message says so."""
