"""Batches from the cache: every row once per pass, labels aligned, augmentation on training
batches only, the same batches from the device copy and from the memory map."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pifexp.data.augment import AugmentSettings
from pifexp.data.batches import CohortBatches, cohort_batches, resolve_on_device
from pifexp.data.cache import build_cache, open_cache
from pifexp.data.manifest import read_manifest
from pifexp.data.splits import split_subjects
from pifexp.errors import ConfigError
from pifexp.experiments.specs import preprocess_spec

ALWAYS_FLIP = AugmentSettings(flip_p=1.0, shift_range=(2, 2))


@pytest.fixture
def volumes() -> np.ndarray:
    """20 distinct 'volumes' (5x4x3) whose first voxel is the row number."""
    data = np.random.default_rng(0).random((20, 5, 4, 3)).astype(np.float32) + 1.0
    data[:, 0, 0, 0] = np.arange(20)
    return data


PARTITIONS = {
    "train": np.arange(0, 12),
    "val": np.arange(12, 16),
    "test": np.arange(16, 20),
}


def server(volumes, on_device=False, augment=ALWAYS_FLIP) -> CohortBatches:
    labels = np.arange(20) % 2
    return CohortBatches(
        volumes,
        labels,
        PARTITIONS,
        "cpu",
        flip_axis=0,
        augment=augment,
        on_device=on_device,
        memory_fraction=0.5,
    )


@pytest.mark.parametrize("partition", ["val", "test"])
def test_validation_and_test_batches_are_never_augmented(volumes, partition):
    served = server(volumes)
    xs, ys = zip(*served.batches(partition, 3, torch.Generator().manual_seed(0)), strict=True)
    x, y = torch.cat(xs), torch.cat(ys)
    rows = PARTITIONS[partition]
    assert torch.equal(x, torch.from_numpy(volumes[rows]).unsqueeze(1))
    assert torch.equal(y, torch.as_tensor(rows % 2, dtype=torch.float32))


def test_training_batches_are_shuffled_and_augmented(volumes):
    served = server(volumes, augment=AugmentSettings(flip_p=1.0, shift_range=(0, 0)))
    pairs = list(served.batches("train", 5, torch.Generator().manual_seed(0)))
    assert [len(y) for _, y in pairs] == [5, 5, 2]
    x, y = torch.cat([x for x, _ in pairs]), torch.cat([y for _, y in pairs])
    flipped = torch.from_numpy(volumes).flip(1)
    # the (flipped) row number sits in the last voxel along x
    rows = x[:, 0, -1, 0, 0].long()
    assert sorted(rows.tolist()) == list(range(12))
    assert rows.tolist() != list(range(12))
    assert torch.equal(x[:, 0], flipped[rows])
    assert torch.equal(y, (rows % 2).float())


def test_on_device_copy_serves_the_same_batches(volumes):
    streamed = server(volumes, on_device=False)
    resident = server(volumes, on_device=True)
    assert resident.on_device and not streamed.on_device
    for partition in ("train", "val"):
        a = list(streamed.batches(partition, 4, torch.Generator().manual_seed(9)))
        b = list(resident.batches(partition, 4, torch.Generator().manual_seed(9)))
        for (xa, ya), (xb, yb) in zip(a, b, strict=True):
            assert torch.equal(xa, xb) and torch.equal(ya, yb)


def test_drop_last_and_counts(volumes):
    served = server(volumes, augment=None)
    assert served.num_batches("train", 5) == 3 and served.num_batches("train", 5, True) == 2
    assert len(list(served.batches("train", 5, drop_last=True))) == 2


def test_on_device_auto_stays_off_on_a_cpu():
    assert resolve_on_device("auto", 10, torch.device("cpu"), 0.5) is False
    assert resolve_on_device(True, 10**15, torch.device("cpu"), 0.5) is True
    with pytest.raises(ConfigError, match="data.on_device"):
        resolve_on_device("sometimes", 10, torch.device("cpu"), 0.5)


def test_cached_cohort_batches_follow_the_split(make_cohort, tiny_config):
    cfg = tiny_config(make_cohort(n_subjects=10, images_per_subject=2))
    manifest_df = read_manifest(cfg.data.manifest, cfg.task.classes)
    location = build_cache(
        manifest_df, preprocess_spec(cfg), cfg.data.cache_dir, workers=1, progress=False
    )
    cohort = open_cache(location)
    split = split_subjects(cohort.index, 0, 0.2, 0.25)
    served = cohort_batches(cohort, split, "cpu", on_device="auto", memory_fraction=0.5)
    x, y = next(served.batches("test", 64))
    assert x.shape == (4, 1, 6, 7, 6) and x.dtype == torch.float32
    rows = np.flatnonzero(cohort.index["subject_id"].isin(split["test"]))
    assert torch.equal(x[:, 0], torch.from_numpy(np.array(cohort.volumes[rows])))
    assert y.tolist() == cohort.labels[rows].tolist()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cohort_on_the_gpu_serves_the_same_batches(volumes):
    streamed = server(volumes, on_device=False)
    resident = CohortBatches(
        volumes,
        np.arange(20) % 2,
        PARTITIONS,
        "cuda",
        flip_axis=0,
        augment=ALWAYS_FLIP,
        on_device="auto",
        memory_fraction=0.5,
    )
    assert resident.on_device
    for partition in ("train", "test"):
        cpu = list(streamed.batches(partition, 4, torch.Generator().manual_seed(2)))
        gpu = list(resident.batches(partition, 4, torch.Generator().manual_seed(2)))
        for (xa, ya), (xb, yb) in zip(cpu, gpu, strict=True):
            assert xb.is_cuda and torch.equal(xa, xb.cpu()) and torch.equal(ya, yb.cpu())
