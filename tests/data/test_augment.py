"""Augmentation: per-sample flips and zero-filled shifts along the left-right axis, in one go."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from nifti_cohorts import tiny_affine

from pifexp.data.augment import augment_batch, augment_settings, flip_axis_from_affine
from pifexp.errors import ConfigError


def batch(size: int = 16) -> torch.Tensor:
    return torch.arange(size * 5 * 4 * 3, dtype=torch.float32).view(size, 1, 5, 4, 3)


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_flip_with_probability_one_flips_the_axis(axis):
    x = batch()
    flipped = augment_batch(x, axis, 1.0, (0, 0), torch.Generator().manual_seed(0))
    assert torch.equal(flipped, x.flip(2 + axis))


def test_no_flip_and_no_shift_is_the_identity():
    x = batch()
    assert torch.equal(augment_batch(x, 0, 0.0, (0, 0)), x)


@pytest.mark.parametrize("shift", [-2, 3])
def test_shift_moves_along_the_axis_and_fills_zeros(shift):
    x = batch(2)
    moved = augment_batch(x, 0, 0.0, (shift, shift), torch.Generator().manual_seed(0))
    expected = torch.zeros_like(x)
    if shift > 0:
        expected[:, :, shift:] = x[:, :, :-shift]
    else:
        expected[:, :, :shift] = x[:, :, -shift:]
    assert torch.equal(moved, expected)


def test_each_sample_draws_its_own_flip_and_shift():
    x = batch(64)
    out = augment_batch(x, 1, 0.5, (-2, 3), torch.Generator().manual_seed(1))
    outcomes = set()
    for sample, result in zip(x, out, strict=True):
        candidates = {}
        for flip in (False, True):
            source = sample.flip(2) if flip else sample
            for shift in range(-2, 4):
                expected = torch.zeros_like(source)
                length = source.shape[2]
                lo, hi = max(shift, 0), min(length + shift, length)
                expected[:, :, lo:hi] = source[:, :, lo - shift : hi - shift]
                candidates[(flip, shift)] = expected
        matches = [key for key, expected in candidates.items() if torch.equal(result, expected)]
        assert matches, "a sample is neither a flip nor a shift of its input"
        outcomes.add(matches[0])
    assert {flip for flip, _ in outcomes} == {False, True}
    assert len({shift for _, shift in outcomes}) > 3


def test_same_generator_seed_same_augmentation():
    x = batch()
    first = augment_batch(x, 0, 0.5, (-2, 3), torch.Generator().manual_seed(3))
    again = augment_batch(x, 0, 0.5, (-2, 3), torch.Generator().manual_seed(3))
    assert torch.equal(first, again)


def test_flip_axis_from_the_affine():
    assert flip_axis_from_affine(tiny_affine()) == 0
    assert flip_axis_from_affine(tiny_affine(orientation="LAS")) == 0
    assert flip_axis_from_affine(tiny_affine()[:, [1, 2, 0, 3]]) == 2
    oblique = tiny_affine()
    angle = np.deg2rad(10)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    oblique[:2, :2] = rotation @ oblique[:2, :2]
    assert flip_axis_from_affine(oblique) == 0


def test_pif_arms_get_flips_only():
    cfg = {"flip_p": 0.5, "shift": [-2, 3], "pif_shift": False}
    assert augment_settings(cfg, pif=False).shift_range == (-2, 3)
    pif = augment_settings(cfg, pif=True)
    assert pif.shift_range == (0, 0) and pif.flip_p == 0.5
    assert not augment_settings({"flip_p": 0.0, "shift": [0, 0], "pif_shift": False}, False).active
    with pytest.raises(ConfigError, match="task.augment.shift"):
        augment_settings({**cfg, "shift": [3, -2]}, pif=False)
