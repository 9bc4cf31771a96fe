"""Watching a training while it runs: each epoch's row appended to epochs.csv and, when asked
for, written to TensorBoard."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pifexp.errors import ConfigError
from pifexp.experiments import rundir

# TensorBoard tag -> the epoch row's column
SCALARS = (
    ("loss/train", "train_loss"),
    ("loss/validation", "val_loss"),
    ("balanced_accuracy/validation", "val_balanced_accuracy"),
)


class EpochWatch:
    """Where a running training reports its epochs: epochs.csv (a row as each ends) and, when
    asked for, TensorBoard (losses, validation balanced accuracy, learning rate)."""

    def __init__(self, epochs_file: Path, tensorboard_dir: Path | None) -> None:
        self.epochs_file = epochs_file
        self.writer = None
        if tensorboard_dir is not None:
            self.writer = tensorboard_writer(tensorboard_dir)

    def epoch(self, row: dict[str, float], lr: float) -> None:
        rundir.append_epoch(self.epochs_file, row)
        if self.writer is not None:
            step = int(row["epoch"])
            for tag, key in SCALARS:
                self.writer.add_scalar(tag, row[key], step)
            self.writer.add_scalar("learning_rate", lr, step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def tensorboard_writer(log_dir: Path | None) -> Any:
    """torch's SummaryWriter into `log_dir`, which needs the tensorboard package (the
    [tensorboard] extra); with no folder, only checks that it is there."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise ConfigError(
            "trainer.tensorboard=true needs TensorBoard: pip install -e '.[tensorboard]' (or "
            "pip install tensorboard)"
        ) from None
    return None if log_dir is None else SummaryWriter(log_dir=str(log_dir))
