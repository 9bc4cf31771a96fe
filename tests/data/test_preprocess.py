"""Preprocessing: target grid, resampling, mask, normalization."""

from __future__ import annotations

import numpy as np
import pytest
from nifti_cohorts import TINY_SHAPE, tiny_affine, tiny_volume

from pifexp.data.grid import Grid, target_grid, world_box
from pifexp.data.preprocess import PreprocessSpec, make_plan, preprocess_volume
from pifexp.errors import ConfigError

REFERENCE = Grid(TINY_SHAPE, tiny_affine())


def settings(**changes):
    base = {
        "mask": None,
        "crop": None,
        "target_shape": tuple(TINY_SHAPE),
        "interpolation": "continuous",
        "normalize": "none",
        "dtype": "float32",
        "resample_to": None,
        "mni_resolution": 1,
        "affine_atol_mm": 1e-3,
    }
    return PreprocessSpec(**{**base, **changes})


def test_same_shape_keeps_the_grid_and_the_voxels():
    grid = target_grid(REFERENCE, TINY_SHAPE, None)
    np.testing.assert_allclose(grid.affine, REFERENCE.affine)
    data = tiny_volume(1)
    volume = preprocess_volume(data, REFERENCE.affine, make_plan(settings(), REFERENCE), "row")
    np.testing.assert_array_equal(volume, data)


def test_half_shape_zooms_by_half_over_the_same_field_of_view():
    grid = target_grid(REFERENCE, (6, 7, 6), None)
    assert grid.voxel_size == (32.0, 32.0, 32.0)
    for ours, theirs in zip(world_box(grid), world_box(REFERENCE), strict=True):
        np.testing.assert_allclose(ours, theirs)


def test_max_normalization_and_mask():
    plan = make_plan(settings(mask="mni152", normalize="max", target_shape=(6, 7, 6)), REFERENCE)
    volume = preprocess_volume(tiny_volume(2), REFERENCE.affine, plan, "row")
    assert volume.shape == (6, 7, 6) and volume.max() == pytest.approx(1.0)
    assert plan.mask is not None and 0 < plan.mask.sum() < plan.mask.size
    assert (volume[~plan.mask] == 0).all()


def test_zscore_inside_the_mask():
    plan = make_plan(settings(mask="mni152", normalize="zscore"), REFERENCE)
    volume = preprocess_volume(tiny_volume(3), REFERENCE.affine, plan, "row")
    inside = volume[plan.mask]
    assert inside.mean() == pytest.approx(0.0, abs=1e-5)
    assert inside.std() == pytest.approx(1.0, abs=1e-4)


def test_stored_dtype():
    plan = make_plan(settings(dtype="float16"), REFERENCE)
    assert preprocess_volume(tiny_volume(4), REFERENCE.affine, plan, "row").dtype == np.float16


@pytest.mark.parametrize(
    "key, value", [("normalize", "minmax"), ("mask", "harvard"), ("dtype", "int8")]
)
def test_unknown_settings_are_named(key, value):
    with pytest.raises(ConfigError, match=f"task.preprocess.{key}='{value}'"):
        settings(**{key: value})
