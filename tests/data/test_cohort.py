"""From the config to a cached cohort and a run's split; the task configs' data settings."""

from __future__ import annotations

import pytest
from nifti_cohorts import tiny_affine, tiny_volume, write_image

from pifexp.data.cache import unfinished_builds
from pifexp.data.cohort import prepare_cohort, split_cohort
from pifexp.data.splits import SplitSpec
from pifexp.errors import PifexpError
from pifexp.experiments.specs import data_spec, preprocess_spec


def test_prepare_cohort_builds_once_and_splits(make_cohort, tiny_config):
    cfg = tiny_config(make_cohort(n_subjects=20))
    cohort = prepare_cohort(cfg.data.manifest, data_spec(cfg))
    assert cohort.volumes.shape == (20, 6, 7, 6)
    assert prepare_cohort(cfg.data.manifest, data_spec(cfg)).path == cohort.path
    assert unfinished_builds(cfg.data.cache_dir) == []
    split = split_cohort(cohort, SplitSpec(0.2, 0.2, subset=0.5), seed=0)
    full = split_cohort(cohort, SplitSpec(0.2, 0.2), seed=0)
    assert split["test"] == full["test"] and set(split["train"]) < set(full["train"])


def test_prepare_cohort_checks_mni_space_before_caching(make_cohort, tiny_config, cohort_dir):
    cfg = tiny_config(make_cohort())
    scanner_space = tiny_affine()
    scanner_space[:3, 3] = 0.0
    for position, path in enumerate(sorted(cohort_dir.glob("sub-*/ses-*/t1.nii.gz"))):
        write_image(path, tiny_volume(position), scanner_space)
    with pytest.raises(PifexpError, match="not in MNI space"):
        prepare_cohort(cfg.data.manifest, data_spec(cfg))
    assert not (cohort_dir.parent / "cache").exists()


@pytest.mark.parametrize(
    "task, test_fraction, val_fraction, flip_p",
    [("ukb", 0.2, 0.2, 0.5), ("adni", 0.2, 0.2, 0.5), ("ms", 0.15, 0.10, 0.0)],
)
def test_task_configs_carry_the_protocol(compose_config, task, test_fraction, val_fraction, flip_p):
    cfg = compose_config("data_check", [f"task={task}", "data.manifest=unused.csv"])
    settings = preprocess_spec(cfg)
    assert list(settings.target_shape) == list(cfg.task.input_shape)
    assert (cfg.task.split.test_fraction, cfg.task.split.val_fraction) == (
        test_fraction,
        val_fraction,
    )
    assert cfg.task.augment.flip_p == flip_p
