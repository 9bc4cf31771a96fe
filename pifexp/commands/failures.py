"""What a command says when it fails: one line, never a traceback on the screen.

Bad input and settings (PifexpError, Hydra's own config errors) say what is wrong; a failure of
the environment (a file system error: no room, no permission, a path that is a file) names the
path and the cause; anything unexpected is one line plus the path of a log file that holds the
traceback, for a bug report.
"""

from __future__ import annotations

import os
import tempfile
import time
import traceback
from pathlib import Path

from hydra.errors import HydraException
from omegaconf.errors import OmegaConfBaseException

from pifexp.errors import PifexpError

INTERRUPTED = 130  # the shell's code for Ctrl-C


def failure_message(error: BaseException, command: str) -> tuple[str, int]:
    """(the line to print, the exit code) for an error that ended `command`."""
    if isinstance(error, KeyboardInterrupt):
        return (
            "pifexp: interrupted; rerun the same command to go on where it stopped",
            INTERRUPTED,
        )
    if isinstance(error, HydraException):
        return f"pifexp: error: {_hydra_message(error)}", 1
    if isinstance(error, PifexpError | OmegaConfBaseException):
        return f"pifexp: error: {_one_line(error)}", 1
    if isinstance(error, OSError):
        return f"pifexp: error: {_os_error(error)}", 1
    log = write_traceback(error, command)
    return (
        f"pifexp: error: unexpected {type(error).__name__}: {_one_line(error)}; the traceback "
        f"is in {log}",
        1,
    )


def _one_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    return "; ".join(lines) if lines else type(error).__name__


def _hydra_message(error: HydraException) -> str:
    """Hydra's message without its config search path, the options on one line."""
    text = str(error).split("Config search path:")[0]
    head, _, options = text.partition("Available options in")
    lines = [line.strip() for line in options.splitlines()[1:] if line.strip()]
    if not options:
        return _one_line(HydraException(head))
    group = options.splitlines()[0].strip().rstrip(":")
    return f"{_one_line(HydraException(head))}; available in {group}: {', '.join(lines)}"


def _os_error(error: OSError) -> str:
    cause = error.strerror or _one_line(error)
    paths = [str(p) for p in (error.filename, error.filename2) if p is not None]
    return f"{' -> '.join(paths)}: {cause}" if paths else cause


def log_folder() -> Path:
    """Where tracebacks of unexpected errors go: pifexp's cache folder, logs/."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "pifexp" / "logs"


def write_traceback(error: BaseException, command: str) -> Path:
    """The error's traceback in a new log file; the system's temporary folder if the cache
    folder cannot be written."""
    text = f"pifexp {command}\n" + "".join(traceback.format_exception(error))
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for folder in (log_folder(), Path(tempfile.gettempdir())):
        path = folder / f"error-{stamp}-{os.getpid()}.log"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            return path
        except OSError:
            continue
    return Path("(no log could be written)")
