"""Early stopping on the validation loss, with two rules that differ in one case.

Both rules number epochs from 0, check no epoch before `ignore_before`, start the best epoch at
`ignore_before` (whatever its loss) and let a later epoch replace it only with a strictly lower
loss; the earliest stop is therefore at epoch `ignore_before + patience`.

- `loss_first` (the default; the protocol as the paper and its notes state it): an epoch's loss is
  looked at first, then training stops once `epoch - best_epoch >= patience`.
- `patience_first` (nitorch's EarlyStopping, which the authors' 2019 notebooks used): once
  `epoch - best_epoch` reaches `patience` training stops without looking at that epoch's loss;
  only earlier epochs' losses are compared.

They part only when the loss at epoch `best_epoch + patience` is a new best: `loss_first` makes it
the best epoch and trains on, `patience_first` stops there. nitorch prints the stop as "Early
stopping in epoch N" with N = the last trained epoch + 1 (the epoch it did not start), and Table 1
of the paper averages that N; pifexp records the last trained epoch, N - 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pifexp.errors import ConfigError

LOSS_FIRST, PATIENCE_FIRST = "loss_first", "patience_first"
STOPPING_RULES = (LOSS_FIRST, PATIENCE_FIRST)


@dataclass
class EarlyStopping:
    """Records each epoch's validation loss (`step`) and says when to stop (see the module)."""

    patience: int
    ignore_before: int = 0
    rule: str = LOSS_FIRST
    best_epoch: int | None = None
    best_loss: float = math.inf

    def __post_init__(self) -> None:
        if self.rule not in STOPPING_RULES:
            raise ConfigError(
                f"trainer.stopping_rule={self.rule!r} must be one of {', '.join(STOPPING_RULES)}"
            )

    def step(self, epoch: int, val_loss: float) -> bool:
        """Record an epoch's validation loss; True when training stops after this epoch."""
        if epoch < self.ignore_before:
            return False
        if self.rule == PATIENCE_FIRST and self._waited_long_enough(epoch):
            return True
        if self.best_epoch is None or val_loss < self.best_loss:
            self.best_epoch, self.best_loss = epoch, val_loss
        return self._waited_long_enough(epoch)

    def _waited_long_enough(self, epoch: int) -> bool:
        best = self.ignore_before if self.best_epoch is None else self.best_epoch
        return epoch - best >= self.patience
