"""White-matter lesions: drawn from a stream, painted where they are, expected load."""

from __future__ import annotations

import numpy as np

from pifexp.synthetic.anatomy import Anatomy
from pifexp.synthetic.lesions import draw_lesions, expected_lesions, paint_lesion


def patients_cfg(ms_settings) -> dict:
    return ms_settings.task["lesions"]["patients"]


def test_the_same_stream_draws_the_same_lesions(tiny_anatomy: Anatomy, ms_settings):
    def draw(seed: int):
        return draw_lesions(
            np.random.default_rng(seed), tiny_anatomy, patients_cfg(ms_settings), 20.0
        )

    first, again = draw(0), draw(0)
    assert len(first) == len(again) > 0
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a.center_mm, b.center_mm)
        np.testing.assert_array_equal(a.radii_mm, b.radii_mm)
        np.testing.assert_allclose(a.axes @ a.axes.T, np.eye(3), atol=1e-12)
    assert draw_lesions(np.random.default_rng(0), tiny_anatomy, patients_cfg(ms_settings), 0) == []


def test_a_painted_lesion_darkens_white_matter_where_it_is(tiny_anatomy: Anatomy, ms_settings):
    lesions = draw_lesions(np.random.default_rng(1), tiny_anatomy, patients_cfg(ms_settings), 20.0)
    lesion = max(lesions, key=lambda one: float(np.prod(one.radii_mm)))
    t1 = np.array(tiny_anatomy.maps["t1"], dtype=np.float32)
    lesion_map = np.zeros_like(t1)
    paint_lesion(t1, lesion_map, lesion, tiny_anatomy)
    grid = tiny_anatomy.grid
    center = np.round((lesion.center_mm - grid.affine[:3, 3]) / grid.voxel_size[0]).astype(int)
    assert lesion_map.max() > 0 and lesion_map[tuple(center)] > 0
    changed = np.abs(t1 - tiny_anatomy.maps["t1"]) > 0
    assert np.array_equal(changed, changed & (lesion_map > 0))  # only where the lesion is


def test_expected_load_of_patients_exceeds_that_of_controls(tiny_anatomy: Anatomy, ms_settings):
    patients, patient_contrast = expected_lesions(tiny_anatomy, ms_settings.task, 1, 12.0)
    controls, _ = expected_lesions(tiny_anatomy, ms_settings.task, 0, 0.5)
    assert patients.sum() > 10 * controls.sum() > 0
    assert 0.3 <= patient_contrast <= 0.8
    assert expected_lesions(tiny_anatomy, ms_settings.task, 1, 0.0) == (None, 0.0)
