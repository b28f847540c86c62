"""The user-error types: a mistake in what the user asked for, not a bug in jaxclip.

Every entry point (`jaxclip.cli.main`) turns a `UserError` into one line on stderr naming the
bad value and the valid choices, and exit code 2; so do OSErrors that are about the user's
machine (no permission, read-only file system, disk full: `USER_ERRNOS`). Anything else keeps
its traceback (exit code 1): it is a bug to report.

The data, model and cache layers raise subclasses that also derive from the builtin type a
caller would expect (`ValueError`, `FileNotFoundError`, ...), so `except ValueError` keeps
working.
"""

from __future__ import annotations

import errno

# OSError kinds that are the user's to fix: permissions, a read-only file system, a full disk.
USER_ERRNOS = {
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EROFS: "read-only file system",
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "disk quota exceeded",
}


class UserError(Exception):
    """A bad input (config, model, dataset, path, split, ...); the message names the fix."""


class UserValueError(UserError, ValueError):
    """A bad value (a split, a folder's content, a model file)."""


class UserFileNotFoundError(UserError, FileNotFoundError):
    """A path, model or dataset that does not exist where the user said."""


class UserPermissionError(UserError, PermissionError):
    """Something the user must allow explicitly (e.g. reading a pickle)."""


def one_line(text: str) -> str:
    """`text` with every run of whitespace (newlines included) as one space."""
    return " ".join(str(text).split())


def user_oserror(e: BaseException) -> str | None:
    """One line for an OSError in `USER_ERRNOS` (naming the path), else None."""
    if not isinstance(e, OSError) or isinstance(e, UserError) or e.errno not in USER_ERRNOS:
        return None
    path = e.filename if e.filename is not None else "?"
    return one_line(f"{USER_ERRNOS[e.errno]}: {path}")
