"""Early stopping on the validation loss, exactly as the paper's protocol states it."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass
class EarlyStopping:
    """Epochs are numbered from 0. Epochs before `ignore_before` are not checked; the best epoch
    starts at `ignore_before` (whatever its loss), later epochs replace it only with a strictly
    lower loss, and training stops once `epoch - best_epoch >= patience`. The earliest stop is
    therefore at epoch `ignore_before + patience`."""

    patience: int
    ignore_before: int = 0
    best_epoch: int | None = None
    best_loss: float = math.inf

    def step(self, epoch: int, val_loss: float) -> bool:
        """Record an epoch's validation loss; True when training stops after this epoch."""
        if epoch < self.ignore_before:
            return False
        if self.best_epoch is None or val_loss < self.best_loss:
            self.best_epoch, self.best_loss = epoch, val_loss
        return epoch - self.best_epoch >= self.patience
