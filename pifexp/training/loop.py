"""One training run: epochs of Adam on BCEWithLogits, validation, early stopping, best state."""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from pifexp.errors import ConfigError, PifexpError
from pifexp.training.early_stopping import EarlyStopping
from pifexp.training.metrics import binary_metrics

SELECTIONS = ("best_val_loss", "best_val_balanced_accuracy", "last")
Batches = Iterable[tuple[torch.Tensor, torch.Tensor]]  # (x (B, 1, D, H, W), y (B,)) on the device


@dataclass
class FitResult:
    best_state: dict[str, torch.Tensor]
    best_epoch: int
    early_stopping_epoch: int
    stopped_early: bool
    epochs: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0


def precision_context(device: torch.device, bf16: bool) -> AbstractContextManager:
    """bf16 autocast on CUDA when asked for; full precision elsewhere."""
    if bf16 and device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return nullcontext()


def train_epoch(
    model: nn.Module,
    batches: Batches,
    optimizer: torch.optim.Optimizer,
    augment: Callable[[torch.Tensor], torch.Tensor],
    autocast: Callable[[], AbstractContextManager],
) -> tuple[float, int]:
    """One pass over the training batches; returns the mean loss per image and the number of
    optimizer steps."""
    model.train()
    loss_fn = nn.BCEWithLogitsLoss(reduction="sum")
    total, count, steps = None, 0, 0  # the loss stays on the device: no sync per batch
    for x, y in batches:
        x = augment(x)  # (B, 1, D, H, W), on the device
        with autocast():
            logits = model(x).squeeze(1)  # (B, 1) -> (B,)
            loss = loss_fn(logits.float(), y.float())
        optimizer.zero_grad(set_to_none=True)
        (loss / len(y)).backward()
        optimizer.step()
        total = loss.detach() if total is None else total + loss.detach()
        count += len(y)
        steps += 1
    return (float(total) / count if count else 0.0), steps


@torch.no_grad()
def evaluate(
    model: nn.Module, batches: Batches, autocast: Callable[[], AbstractContextManager]
) -> tuple[float, np.ndarray, np.ndarray]:
    """Mean loss, predicted probabilities and labels over the batches (no augmentation)."""
    model.eval()
    loss_fn = nn.BCEWithLogitsLoss(reduction="sum")
    total, logits_all, labels_all = 0.0, [], []
    for x, y in batches:
        with autocast():
            logits = model(x).squeeze(1).float()
        total += float(loss_fn(logits, y.float()))
        logits_all.append(logits.cpu())
        labels_all.append(y.cpu())
    logits_cat, labels_cat = torch.cat(logits_all), torch.cat(labels_all)
    probabilities = torch.sigmoid(logits_cat).numpy()
    return total / len(labels_cat), probabilities, labels_cat.numpy()


def _require_finite(train_loss: float, epoch: int) -> None:
    if not math.isfinite(train_loss):
        raise PifexpError(
            f"the training loss is {train_loss} at epoch {epoch}: lower trainer.lr or check "
            "the input intensities"
        )


def _selected(
    select: str, early_stopping: EarlyStopping, row: dict[str, float], best_score: float
) -> bool:
    """Whether the epoch just stepped (row) holds the state to keep under `select`."""
    if select == "best_val_loss":
        return early_stopping.best_epoch == row["epoch"]
    if select == "last":
        return True
    return (
        row["epoch"] >= early_stopping.ignore_before and row["val_balanced_accuracy"] > best_score
    )


def fit(
    model: nn.Module,
    train_batches: Callable[[int], Batches],
    val_batches: Callable[[], Batches],
    optimizer: torch.optim.Optimizer,
    early_stopping: EarlyStopping,
    max_epochs: int,
    augment: Callable[[torch.Tensor], torch.Tensor],
    autocast: Callable[[], AbstractContextManager] = nullcontext,
    on_epoch: Callable[[dict[str, float]], None] = lambda row: None,
    select: str = "best_val_loss",
) -> FitResult:
    """Train until early stopping (or `max_epochs`) and keep the state of the best epoch.

    `train_batches(epoch)` gives that epoch's (shuffled) training batches, `val_batches()` the
    validation batches. The kept state is the early-stopping best epoch's (`best_val_loss`), that
    of the epoch with the highest validation balanced accuracy from `ignore_before` on
    (`best_val_balanced_accuracy`, the later versions' checkpoint), or the last epoch's (`last`,
    the 2019 paper's: no checkpoint was restored).
    """
    if select not in SELECTIONS:
        raise ConfigError(f"protocol.selection={select!r} must be one of {', '.join(SELECTIONS)}")
    start = time.perf_counter()
    epochs: list[dict[str, float]] = []
    best_state, best_epoch, best_score = copy.deepcopy(model.state_dict()), None, -math.inf
    stopped_early = False
    epoch, steps = -1, 0
    for epoch in range(max_epochs):
        train_loss, taken = train_epoch(model, train_batches(epoch), optimizer, augment, autocast)
        steps += taken
        _require_finite(train_loss, epoch)
        val_loss, probabilities, labels = evaluate(model, val_batches(), autocast)
        row = {
            "epoch": epoch,
            "train_loss": train_loss,
            "val_loss": val_loss,
            "val_balanced_accuracy": binary_metrics(labels, probabilities)["balanced_accuracy"],
            "steps": steps,  # optimizer steps so far
            "seconds": round(time.perf_counter() - start, 3),  # wall time so far
        }
        epochs.append(row)
        on_epoch(row)
        stop = early_stopping.step(epoch, val_loss)
        if _selected(select, early_stopping, row, best_score):
            best_state, best_epoch = copy.deepcopy(model.state_dict()), epoch
            best_score = row["val_balanced_accuracy"]
        if stop:
            stopped_early = True
            break
    if best_epoch is None:  # never reached ignore_before: the last state is all there is
        best_epoch, best_state = epoch, copy.deepcopy(model.state_dict())
    return FitResult(
        best_state=best_state,
        best_epoch=best_epoch,
        early_stopping_epoch=epoch,
        stopped_early=stopped_early,
        epochs=epochs,
        seconds=time.perf_counter() - start,
    )
