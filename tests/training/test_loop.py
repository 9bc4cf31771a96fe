import pytest
import torch
from torch import nn

from pifexp.errors import PifexpError
from pifexp.training.early_stopping import EarlyStopping
from pifexp.training.loop import fit


def separable_batches(seed, n=32):
    generator = torch.Generator().manual_seed(seed)
    y = (torch.arange(n) % 2).float()
    x = torch.randn(n, 1, 2, 2, 2, generator=generator) + 2.0 * (y.view(-1, 1, 1, 1, 1) - 0.5)
    return [(x[i : i + 8], y[i : i + 8]) for i in range(0, n, 8)]


def tiny_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(8, 1))


def test_fit_keeps_the_best_epochs_state_and_stops_by_patience():
    model = tiny_model()
    train, val = separable_batches(0), separable_batches(1)
    states = []
    result = fit(
        model, lambda epoch: train, lambda: val,
        torch.optim.SGD(model.parameters(), lr=0.5), EarlyStopping(patience=3, ignore_before=2),
        max_epochs=50, augment=lambda x: x,
        on_epoch=lambda row: states.append({k: v.clone() for k, v in model.state_dict().items()}),
    )  # fmt: skip
    losses = [row["val_loss"] for row in result.epochs]
    counted = losses[2:]
    assert result.best_epoch == 2 + counted.index(min(counted))
    assert result.early_stopping_epoch == len(losses) - 1
    if result.stopped_early:
        assert result.early_stopping_epoch - result.best_epoch == 3
    for key, value in result.best_state.items():
        torch.testing.assert_close(value, states[result.best_epoch][key])


def test_a_nan_loss_stops_with_a_clear_error():
    model = tiny_model()
    with torch.no_grad():
        model[1].weight.fill_(float("nan"))
    train = separable_batches(0)
    with pytest.raises(PifexpError, match="training loss is nan at epoch 0"):
        fit(model, lambda epoch: train, lambda: train, torch.optim.SGD(model.parameters(), lr=0.1),
            EarlyStopping(patience=2), max_epochs=5, augment=lambda x: x)  # fmt: skip


def test_fit_can_keep_the_best_validation_balanced_accuracy_instead():
    model = tiny_model()
    train, val = separable_batches(0), separable_batches(1)
    result = fit(
        model, lambda epoch: train, lambda: val, torch.optim.SGD(model.parameters(), lr=0.05),
        EarlyStopping(patience=4, ignore_before=1), max_epochs=12, augment=lambda x: x,
        select="best_val_balanced_accuracy",
    )  # fmt: skip
    scores = [row["val_balanced_accuracy"] for row in result.epochs]
    assert result.best_epoch == 1 + scores[1:].index(max(scores[1:]))


def test_unknown_selection_names_the_setting():
    model = tiny_model()
    with pytest.raises(PifexpError, match="protocol.selection='final'"):
        fit(
            model, lambda epoch: [], lambda: [], torch.optim.SGD(model.parameters(), lr=0.1),
            EarlyStopping(patience=1), max_epochs=1, augment=lambda x: x, select="final",
        )  # fmt: skip


def test_fit_can_keep_the_last_epochs_state():
    model = tiny_model()
    train = separable_batches(0)
    result = fit(
        model, lambda epoch: train, lambda: train, torch.optim.SGD(model.parameters(), lr=0.05),
        EarlyStopping(patience=2), max_epochs=4, augment=lambda x: x, select="last",
    )  # fmt: skip
    assert result.best_epoch == result.early_stopping_epoch == len(result.epochs) - 1
    for key, value in model.state_dict().items():
        torch.testing.assert_close(result.best_state[key], value)
