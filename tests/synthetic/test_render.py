"""From a plan row to an image, as pure functions on a tiny grid: the subject's anatomy, the
warp, the whole image, and the effect map."""

from __future__ import annotations

import numpy as np
import pytest

from pifexp.synthetic import CohortSettings, effect_map, plan_cohort, synthesize_image
from pifexp.synthetic.anatomy import Anatomy
from pifexp.synthetic.render import render_anatomy, warp_coordinates
from pifexp.synthetic.settings import effect_names


def zero_factors(settings: CohortSettings, **changes: float) -> dict[str, float]:
    factors = {name: 0.0 for name in effect_names(settings.synthetic["anatomy"])}
    return {**factors, **changes}


@pytest.fixture(scope="module")
def ms_plan(ms_settings: CohortSettings):
    return plan_cohort(ms_settings)


def test_no_change_renders_the_anatomy_itself(tiny_anatomy: Anatomy, ms_settings):
    t1, lesion_map = render_anatomy(tiny_anatomy, zero_factors(ms_settings))
    assert t1.dtype == np.float32 and t1.shape == tiny_anatomy.grid.shape
    # the ventricles' volume curve is sampled, so "no change" may move a wall by a hair
    np.testing.assert_allclose(t1, tiny_anatomy.maps["t1"], atol=1e-3)
    assert not lesion_map.any()


def test_a_smaller_hippocampus_darkens_only_the_hippocampus(tiny_anatomy: Anatomy, ms_settings):
    before, _ = render_anatomy(tiny_anatomy, zero_factors(ms_settings))
    after, _ = render_anatomy(tiny_anatomy, zero_factors(ms_settings, hippocampus=-0.3))
    difference = after - before
    membership = np.asarray(tiny_anatomy.maps["region:hippocampus"])
    assert difference.min() < -0.01  # grey matter gives way to darker CSF
    assert difference.max() <= 1e-6  # nowhere brighter
    changed = difference < -1e-3
    assert membership[changed].min() > 0.01  # every visible change lies in the region ...
    assert np.abs(difference[membership < 1e-4]).max() < 1e-5  # ... and none far from it


def test_no_head_scale_and_no_displacement_is_the_identity(tiny_anatomy: Anatomy):
    grid = tiny_anatomy.grid
    coordinates = warp_coordinates(grid, tiny_anatomy.brain_center_mm, 0.0, None)
    assert coordinates.shape == (3, *grid.shape)
    np.testing.assert_allclose(coordinates, np.indices(grid.shape), atol=1e-4)


def test_a_larger_head_shows_points_nearer_the_centre(tiny_anatomy: Anatomy):
    grid = tiny_anatomy.grid
    center = tiny_anatomy.brain_center_mm
    center_voxel = (center - grid.affine[:3, 3]) / np.diag(grid.affine)[:3]
    identity = np.indices(grid.shape) - center_voxel[:, None, None, None]
    larger = warp_coordinates(grid, center, np.log(1.1), None) - center_voxel[:, None, None, None]
    np.testing.assert_allclose(larger, identity / 1.1, atol=1e-3)


def test_a_displacement_moves_every_voxel_by_it(tiny_anatomy: Anatomy):
    grid = tiny_anatomy.grid
    displacement = np.zeros((3, *grid.shape), dtype=np.float32)
    displacement[1] = 2.0 * grid.voxel_size[1]  # two voxels forward
    coordinates = warp_coordinates(grid, tiny_anatomy.brain_center_mm, 0.0, displacement)
    np.testing.assert_allclose(coordinates[1] - np.indices(grid.shape)[1], 2.0, atol=1e-4)


def test_an_image_is_the_same_for_the_same_row(tiny_anatomy: Anatomy, ms_settings, ms_plan):
    synthetic, task = ms_settings.synthetic, ms_settings.task
    row = ms_plan[ms_plan["label"] == 1].iloc[0].to_dict()
    volume, stats = synthesize_image(tiny_anatomy, row, synthetic, task)
    again, stats_again = synthesize_image(tiny_anatomy, row, synthetic, task)
    assert volume.dtype == np.float32 and volume.shape == tiny_anatomy.grid.shape
    np.testing.assert_array_equal(volume, again)
    assert stats == stats_again
    assert volume.min() >= 0 and (volume > 0).mean() > 0.2
    other = ms_plan.iloc[1 if row["image_index"] == 0 else 0].to_dict()
    assert not np.array_equal(synthesize_image(tiny_anatomy, other, synthetic, task)[0], volume)


def test_the_subjects_lesions_come_from_its_own_stream(tiny_anatomy: Anatomy, ms_settings, ms_plan):
    """Another image of the same subject (another image stream) keeps the subject's lesions."""
    synthetic, task = ms_settings.synthetic, ms_settings.task
    row = ms_plan[ms_plan["label"] == 1].iloc[0].to_dict()
    _, stats = synthesize_image(tiny_anatomy, row, synthetic, task)
    moved = {**row, "image_index": row["image_index"] + 1000}
    volume, moved_stats = synthesize_image(tiny_anatomy, moved, synthetic, task)
    assert moved_stats == stats
    assert not np.array_equal(volume, synthesize_image(tiny_anatomy, row, synthetic, task)[0])


def test_the_effect_map_shows_the_ms_signal(tiny_anatomy: Anatomy, ms_settings, ms_plan):
    effect = effect_map(tiny_anatomy, ms_plan, ms_settings)
    assert effect.shape == tiny_anatomy.grid.shape and effect.dtype == np.float32
    assert effect.min() < 0  # lesions and atrophy: darker in MS
    np.testing.assert_array_equal(effect, effect_map(tiny_anatomy, ms_plan, ms_settings))
