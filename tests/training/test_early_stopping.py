import pytest

from pifexp.training.early_stopping import EarlyStopping


def run(losses, patience, ignore_before):
    stopper = EarlyStopping(patience=patience, ignore_before=ignore_before)
    for epoch, loss in enumerate(losses):
        if stopper.step(epoch, loss):
            return epoch, stopper.best_epoch
    return None, stopper.best_epoch


def test_earliest_stop_is_ignore_before_plus_patience():
    # the loss only rises: the best epoch stays at ignore_before
    assert run([float(e) for e in range(50)], patience=8, ignore_before=5) == (13, 5)


def test_epochs_before_ignore_before_are_not_checked():
    # a very low loss at epoch 2 does not count
    losses = [5.0, 5.0, 0.1, 5.0, 4.0, 3.0, 3.5, 3.6, 3.7]
    assert run(losses, patience=3, ignore_before=4) == (8, 5)


def test_improvement_must_be_strict():
    losses = [1.0, 0.5, 0.5, 0.5, 0.5]
    assert run(losses, patience=3, ignore_before=0) == (4, 1)


def test_improvement_resets_patience():
    losses = [1.0, 0.9, 0.95, 0.8, 0.85, 0.86, 0.87]
    assert run(losses, patience=3, ignore_before=0) == (6, 3)
    assert run(losses[:6], patience=3, ignore_before=0) == (None, 3)


@pytest.mark.parametrize("patience", [1, 4])
def test_patience_zero_based_epochs(patience):
    stop, best = run([1.0] * 20, patience=patience, ignore_before=0)
    assert (stop, best) == (patience, 0)
