"""The cache: built once per cohort and settings, invalidated by a changed file, atomic."""

from __future__ import annotations

import os
from dataclasses import replace

import numpy as np
import pytest
from nifti_cohorts import TARGET_SHAPE, tiny_affine, tiny_volume, write_image

import pifexp.data.cache as cache_module
from pifexp.data.cache import (
    build_cache,
    cache_location,
    is_built,
    load_cache,
    open_cache,
    unfinished_builds,
)
from pifexp.data.manifest import read_manifest
from pifexp.errors import PifexpError
from pifexp.experiments.specs import preprocess_spec


@pytest.fixture
def cohort(make_cohort, tiny_config):
    """(manifest frame, preprocessing settings, cache folder) of an 8-subject ADNI-like cohort."""
    cfg = tiny_config(make_cohort())
    manifest_df = read_manifest(cfg.data.manifest, cfg.task.classes)
    return manifest_df, preprocess_spec(cfg), cfg.data.cache_dir


def build(manifest_df, settings, cache_dir, workers=1):
    return build_cache(manifest_df, settings, cache_dir, workers=workers, progress=False)


def test_cache_holds_preprocessed_volumes_in_manifest_order(cohort):
    manifest_df, settings, cache_dir = cohort
    location = build(manifest_df, settings, cache_dir)
    cached = open_cache(location)
    assert cached.volumes.shape == (len(manifest_df), *TARGET_SHAPE)
    assert cached.volumes.dtype == np.float32
    assert isinstance(load_cache(location), np.memmap)
    assert cached.index["subject_id"].tolist() == manifest_df["subject_id"].tolist()
    assert cached.labels.tolist() == manifest_df["label"].tolist()
    # divided by each image's maximum, zero outside the MNI152 brain mask (the grid's corners)
    np.testing.assert_allclose(cached.volumes.max(axis=(1, 2, 3)), 1.0)
    assert (cached.volumes[:, 0, 0, 0] == 0).all()
    assert cached.grid.shape == TARGET_SHAPE and cached.flip_axis == 0


def test_second_build_reuses_the_cache(cohort):
    manifest_df, settings, cache_dir = cohort
    location = build(manifest_df, settings, cache_dir)
    written = (location / "volumes.npy").stat().st_mtime_ns
    assert build(manifest_df, settings, cache_dir) == location
    assert (location / "volumes.npy").stat().st_mtime_ns == written


def test_changed_file_invalidates_the_cache_and_keeps_the_old_one(cohort, cohort_dir):
    manifest_df, settings, cache_dir = cohort
    first = build(manifest_df, settings, cache_dir)
    before = np.array(load_cache(first))
    changed = manifest_df["path"].iloc[3]
    write_image(cohort_dir / changed, tiny_volume(999))
    stat = os.stat(changed)
    os.utime(changed, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # a visibly later mtime
    assert not is_built(cache_location(manifest_df, settings, cache_dir))
    second = build(manifest_df, settings, cache_dir)
    assert second != first and is_built(first)
    after = load_cache(second)
    np.testing.assert_array_equal(np.array(load_cache(first)), before)
    assert not np.array_equal(after[3], before[3])
    np.testing.assert_array_equal(after[2], before[2])


def test_touching_a_file_invalidates_the_cache(cohort):
    manifest_df, settings, cache_dir = cohort
    first = build(manifest_df, settings, cache_dir)
    path = manifest_df["path"].iloc[0]
    stat = os.stat(path)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))
    assert cache_location(manifest_df, settings, cache_dir) != first


def test_changed_settings_give_another_cache(cohort):
    manifest_df, settings, cache_dir = cohort
    first = build(manifest_df, settings, cache_dir)
    second = build(manifest_df, replace(settings, dtype="float16"), cache_dir)
    assert second != first
    assert load_cache(second).dtype == np.float16
    np.testing.assert_allclose(load_cache(second), load_cache(first), atol=1e-3)


def test_parallel_build_equals_serial_build(cohort, tmp_path):
    manifest_df, settings, cache_dir = cohort
    serial = load_cache(build(manifest_df, settings, tmp_path / "serial", workers=1))
    parallel = load_cache(build(manifest_df, settings, tmp_path / "parallel", workers=2))
    np.testing.assert_array_equal(serial, parallel)


def test_interrupted_build_leaves_no_cache(cohort, monkeypatch):
    manifest_df, settings, cache_dir = cohort
    calls = []
    real = cache_module.preprocess_volume

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(cache_module, "preprocess_volume", interrupted)
    with pytest.raises(KeyboardInterrupt):
        build(manifest_df, settings, cache_dir)
    assert not is_built(cache_location(manifest_df, settings, cache_dir))
    assert list(cache_dir_contents(cache_dir)) == []
    monkeypatch.setattr(cache_module, "preprocess_volume", real)
    assert is_built(build(manifest_df, settings, cache_dir))


def test_bad_image_during_build_leaves_no_cache(cohort, cohort_dir):
    manifest_df, settings, cache_dir = cohort
    data = tiny_volume(4)
    data[2, 2, 2] = np.nan
    write_image(cohort_dir / manifest_df["path"].iloc[4], data)
    with pytest.raises(PifexpError, match="line 6 .*non-finite"):
        build(manifest_df, settings, cache_dir, workers=2)
    assert list(cache_dir_contents(cache_dir)) == []


def test_killed_build_folder_never_looks_like_a_cache(cohort, check_cli):
    manifest_df, settings, cache_dir = cohort
    location = cache_location(manifest_df, settings, cache_dir)
    # what a build killed before its rename leaves: a hidden folder with a partial array
    leftover = location.parent / f".building-{location.name}-killed"
    leftover.mkdir(parents=True)
    np.lib.format.open_memmap(
        leftover / "volumes.npy", mode="w+", dtype=np.float32, shape=(8, *TARGET_SHAPE)
    )
    assert not is_built(location)
    with pytest.raises(PifexpError, match="not a complete pifexp cache"):
        open_cache(leftover)
    assert unfinished_builds(cache_dir) == [leftover]
    code, _, err = check_cli(manifest_df.attrs["manifest"])
    assert code == 0, err
    assert "1 unfinished cache build(s)" in err
    assert is_built(location)


def test_resampling_to_mni_and_cropping(cohort):
    manifest_df, settings, cache_dir = cohort
    crop = [[-90.0, 90.0], [-126.0, 90.0], [-72.0, 108.0]]
    location = build(manifest_df, replace(settings, resample_to="mni", crop=crop), cache_dir)
    cached = open_cache(location)
    assert cached.volumes.shape == (8, *TARGET_SHAPE)
    corner = cached.grid.affine @ np.array([-0.5, -0.5, -0.5, 1.0])
    np.testing.assert_allclose(corner[:3], [-90.0, -126.0, -72.0])


def test_flip_axis_follows_the_affine(make_cohort, tiny_config, cohort_dir):
    cfg = tiny_config(make_cohort(orientation="LAS"))
    manifest_df = read_manifest(cfg.data.manifest, cfg.task.classes)
    cached = open_cache(build(manifest_df, preprocess_spec(cfg), cfg.data.cache_dir))
    assert cached.grid.orientation == "LAS" and cached.flip_axis == 0
    # y, x, z storage: the left-right axis is the second one
    swapped = tiny_affine((14, 12, 12))[:, [1, 0, 2, 3]]
    for position, path in enumerate(manifest_df["path"]):
        write_image(cohort_dir / path, tiny_volume(position, (14, 12, 12)), swapped)
    settings = replace(preprocess_spec(cfg), target_shape=(7, 6, 6))
    cached = open_cache(build(manifest_df, settings, cfg.data.cache_dir))
    assert cached.grid.orientation == "ARS" and cached.flip_axis == 1


def cache_dir_contents(cache_dir):
    return [path for path in os.scandir(cache_dir)] if os.path.isdir(cache_dir) else []
