"""Errors that reach the user as one line (the CLI prints them and exits non-zero)."""


class PifexpError(Exception):
    """Bad input or settings; the message names the file, row or setting and the problem."""


class ConfigError(PifexpError, ValueError):
    """A setting that cannot be used; the message names the setting."""
