"""The cohort grid and the reference anatomy built on it."""

from __future__ import annotations

import numpy as np
import pytest

from pifexp.data.grid import box_shortfall_mm, mni_brain_box
from pifexp.errors import ConfigError
from pifexp.synthetic import cohort_grid
from pifexp.synthetic.anatomy import Anatomy


def test_paper_grids_cover_the_mni_brain():
    ukb = cohort_grid([182, 218, 182], [182, 218, 182], [-0.5, -17.5, 18.5])
    np.testing.assert_allclose(ukb.affine[:3, :3], np.eye(3))
    np.testing.assert_allclose(ukb.affine[:3, 3], [-91, -126, -72])  # FSL's grid, stored RAS
    for shape in ([182, 218, 182], [96, 114, 96], [72, 86, 72], [24, 28, 24]):
        grid = cohort_grid(shape, [182, 218, 182], [-0.5, -17.5, 18.5])
        assert box_shortfall_mm(grid, mni_brain_box(1)) == 0


@pytest.mark.parametrize(
    ("shape", "field_of_view", "center", "setting"),
    [
        ([24, 28, 0], [182, 218, 182], [0, 0, 0], "task.input_shape"),
        ([24, 28, 24], [182, 218], [0, 0, 0], "data.synthetic.grid.field_of_view_mm"),
        ([24, 28, 24], [182, 218, 182], [0, 0], "data.synthetic.grid.center_mm"),
    ],
)
def test_bad_grids_are_named(shape, field_of_view, center, setting: str):
    with pytest.raises(ConfigError, match=setting.replace(".", r"\.")):
        cohort_grid(shape, field_of_view, center)


def test_anatomy_lives_on_the_cohort_grid(tiny_anatomy: Anatomy):
    grid = tiny_anatomy.grid
    assert tiny_anatomy.template_resolution == 2  # the coarsest template finer than 7.8 mm
    for name, array in tiny_anatomy.maps.items():
        assert array.shape == grid.shape and array.dtype == np.float32, name
    assert {"region:hippocampus", "candidates:periventricular"} <= set(tiny_anatomy.maps)
    tissue = tiny_anatomy.tissue_intensity
    assert tissue["wm"] > tissue["gm"] > tissue["csf"]  # T1: white matter brightest
    assert np.all(np.diff(tiny_anatomy.ventricle_log_volume) > 0)
    assert tiny_anatomy.meta["ventricle_volume_ml"] > 0
