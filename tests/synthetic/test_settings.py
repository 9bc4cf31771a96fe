"""Cohort settings: bad values named as they are written in the configs, the key, the folder,
and the quick profile's sizes."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
from cohort_files import TINY_GRID, settings_for, synth_overrides

from pifexp.errors import ConfigError
from pifexp.experiments.specs import synthetic_spec
from pifexp.synthetic import CohortSettings, cohort_settings


@pytest.mark.parametrize(
    ("override", "setting"),
    [
        ("data.synthetic.n_subjects=1", "data.synthetic.n_subjects"),
        ("data.synthetic.dtype=uint8", "data.synthetic.dtype"),
        ("data.synthetic.compress_level=12", "data.synthetic.compress_level"),
        ("data.synthetic.workers=0", "data.synthetic.workers"),
        (
            "data.synthetic.tasks.adni.class_fraction=1.5",
            "data.synthetic.tasks.adni.class_fraction",
        ),
        (
            "data.synthetic.tasks.adni.images_per_subject=9",
            "data.synthetic.tasks.adni.images_per_subject",
        ),
        ("+data.synthetic.tasks.adni.class_effects.pons=-0.1", "class_effects.pons"),
        ("data.synthetic.grid.template_resolution=3", "data.synthetic.grid.template_resolution"),
        ("task.input_shape=[24,28]", "task.input_shape"),
        ("task.name=abide", "task.name"),
    ],
)
def test_bad_settings_are_named(compose_config, tmp_path: Path, override: str, setting: str):
    cfg = compose_config(
        "data_synth", ["task=adni", TINY_GRID, *synth_overrides(tmp_path), override]
    )
    with pytest.raises(ConfigError, match=setting.replace(".", r"\.")):
        synthetic_spec(cfg)
    assert list(tmp_path.iterdir()) == []


@pytest.fixture(scope="module")
def adni_values() -> tuple[dict, dict]:
    """data.synthetic as plain values, and the task's name, classes and shape (keywords)."""
    settings = settings_for("task=adni", TINY_GRID, "data.synthetic.out_dir=null")
    task = {"task_name": "adni", "classes": ["CN", "AD"], "input_shape": [24, 28, 24]}
    return settings.synthetic, task


def test_takes_plain_values(adni_values):
    synthetic, task = adni_values
    settings = cohort_settings(synthetic, **task)
    assert isinstance(settings, CohortSettings)
    assert settings.classes == ("CN", "AD")
    assert settings.grid.shape == (24, 28, 24)
    assert settings.task == synthetic["tasks"]["adni"]
    assert settings.key == cohort_settings(copy.deepcopy(synthetic), **task).key


def test_keeps_its_own_copy_of_the_settings(adni_values):
    synthetic, task = adni_values
    values = copy.deepcopy(synthetic)
    settings = cohort_settings(values, **task)
    values["seed"] = 99
    values["tasks"]["adni"]["sites"] = 7
    assert settings.seed == synthetic["seed"]
    assert settings.task["sites"] == synthetic["tasks"]["adni"]["sites"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"task_name": "abide"},
            "data.synthetic.tasks has no entry for task.name='abide' (it has adni, ms, ukb)",
        ),
        ({"classes": ["CN"]}, "task.classes=['CN'] must name two classes"),
        ({"input_shape": [24, 28]}, "task.input_shape=[24, 28] must be three positive integers"),
    ],
)
def test_bad_task_values_are_named(adni_values, change: dict, message: str):
    synthetic, task = adni_values
    with pytest.raises(ConfigError) as error:
        cohort_settings(synthetic, **{**task, **change})
    assert str(error.value) == message


def test_non_content_settings_keep_the_key_and_the_cache_folder(adni_values):
    synthetic, task = adni_values
    settings = cohort_settings(synthetic, **task)
    other = copy.deepcopy(synthetic)
    other.update(workers=2, progress=True, plot=True, plot_threshold=0.5)
    same = cohort_settings(other, **task)
    assert (same.key, same.target) == (settings.key, settings.target)
    assert settings.target.parent == Path(synthetic["cache_dir"]).expanduser().absolute()
    assert settings.target.name.startswith("adni-24x28x24-n")
    reseeded = cohort_settings({**copy.deepcopy(synthetic), "seed": 3}, **task)
    assert reseeded.key != settings.key and reseeded.target != settings.target


@pytest.mark.parametrize("task", ["ukb", "adni", "ms"])
def test_quick_profile_is_smaller_and_fits_its_networks(compose_config, task: str):
    torch = pytest.importorskip("torch")
    from pifexp.experiments.specs import network_spec_of
    from pifexp.models import build_model

    quick = compose_config("data_synth", [f"task={task}", "profile=quick"])
    paper = compose_config("data_synth", [f"task={task}"])
    shape = list(quick.task.input_shape)
    assert np.prod(shape) < np.prod(paper.task.input_shape)
    # smaller cohorts, but 20% of the training subjects is at least 30 (MS: above its paper size)
    assert quick.data.synthetic.n_subjects <= max(paper.data.synthetic.n_subjects, 240)
    assert 0.2 * 0.8 * 0.8 * quick.data.synthetic.n_subjects >= 30
    for model in ("baseline", "pif"):
        cfg = compose_config("model_summary", [f"task={task}", f"model={model}", "profile=quick"])
        assert list(cfg.task.input_shape) == shape
        with torch.device("meta"):
            build_model(network_spec_of(cfg))
