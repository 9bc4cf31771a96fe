"""The training settings of one run (trainer.* and protocol.selection), checked when built."""

from __future__ import annotations

import math
from dataclasses import dataclass

from pifexp.errors import ConfigError
from pifexp.training.early_stopping import LOSS_FIRST, STOPPING_RULES
from pifexp.training.loop import SELECTIONS

DEVICES = ("auto", "cpu", "cuda")
AUTO_CHOICES = ("auto", True, False)


@dataclass(frozen=True)
class TrainerSpec:
    """Seeds, optimiser, early stopping and where and how the network runs."""

    batch_size: int
    patience: int  # early stopping on the validation loss
    ignore_before: int
    seeds: int = 10  # repeats: repeat k uses seed first_seed + k for split and model
    first_seed: int = 0
    max_epochs: int = 200
    lr: float = 1e-4  # Adam
    weight_decay: float = 1e-4
    selection: str = "best_val_loss"  # the state that is tested (protocol.selection)
    # loss_first | patience_first (nitorch's, the 2019 notebooks'): see training/early_stopping.py
    stopping_rule: str = LOSS_FIRST
    device: str = "auto"  # auto (CUDA when present) | cpu | cuda
    bf16: str | bool = "auto"  # bf16 autocast; auto: on for CUDA
    channels_last: str | bool = "auto"  # channels-last 3D activations; auto: on for CUDA
    deterministic: bool = False  # CUDA: deterministic kernels
    num_threads: int | None = None  # CPU threads for torch; None: torch's default
    progress: bool = True
    tensorboard: bool = False  # losses, balanced accuracy and learning rate per epoch

    def __post_init__(self) -> None:
        for name, low in (("batch_size", 1), ("patience", 1), ("ignore_before", 0),
                          ("seeds", 1), ("first_seed", 0), ("max_epochs", 1)):  # fmt: skip
            _integer(name, getattr(self, name), low)
        if self.num_threads is not None:
            _integer("num_threads", self.num_threads, 1)
        _number("lr", self.lr, positive=True)
        _number("weight_decay", self.weight_decay, positive=False)
        _choice("device", self.device, DEVICES)
        _choice("bf16", self.bf16, AUTO_CHOICES)
        _choice("channels_last", self.channels_last, AUTO_CHOICES)
        _choice("deterministic", self.deterministic, (True, False))
        _choice("progress", self.progress, (True, False))
        _choice("tensorboard", self.tensorboard, (True, False))
        _choice("stopping_rule", self.stopping_rule, STOPPING_RULES)
        if self.selection not in SELECTIONS:
            raise ConfigError(
                f"protocol.selection={self.selection!r} must be one of {', '.join(SELECTIONS)}"
            )


def _integer(name: str, value: object, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"trainer.{name}={value!r} must be an integer >= {low}")


def _number(name: str, value: object, positive: bool) -> None:
    bad = isinstance(value, bool) or not isinstance(value, int | float)
    bad = bad or not math.isfinite(value)  # type: ignore[arg-type]
    if bad or (value <= 0 if positive else value < 0):  # type: ignore[operator]
        bound = "> 0" if positive else ">= 0"
        raise ConfigError(f"trainer.{name}={value!r} must be a number {bound}")


def _choice(name: str, value: object, choices: tuple) -> None:
    # `in` would take 1 for True and 0 for False
    if not any(value is choice or (isinstance(choice, str) and value == choice)
               for choice in choices):  # fmt: skip
        shown = ", ".join(str(c).lower() if isinstance(c, bool) else c for c in choices)
        raise ConfigError(f"trainer.{name}={value!r} must be one of {shown}")
