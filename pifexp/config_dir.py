"""Where the Hydra configs are: inside the installed package (a wheel) or atop a checkout."""

from __future__ import annotations

from pathlib import Path

from pifexp.errors import PifexpError


def config_dir() -> Path:
    """The folder of the Hydra configs (configs/train.yaml, configs/task/, ...)."""
    package = Path(__file__).resolve().parent
    for candidate in (package / "configs", package.parent / "configs"):
        if candidate.is_dir():
            return candidate
    raise PifexpError(f"pifexp's configs are missing (looked in {package} and {package.parent})")


def group_options(group: str) -> list[str]:
    """The options of a config group (`study` -> registration, samples, ...); a package path
    (`group@pkg`) names its group's folder."""
    folder = config_dir() / group.split("@")[0]
    if not folder.is_dir():
        return []
    return sorted(path.stem for path in folder.glob("*.yaml"))
