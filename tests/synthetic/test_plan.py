"""The cohort plan as a pure function of the settings: seeded, balanced, visits as configured."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from cohort_files import TINY_GRID, settings_for

from pifexp.experiments.specs import synthetic_spec
from pifexp.synthetic import plan_cohort
from pifexp.synthetic.plan import lesion_count_means, subject_log_factors
from pifexp.synthetic.settings import HEAD_SCALE, effect_names


@pytest.fixture(scope="module")
def adni_settings():
    return settings_for("task=adni", "data.synthetic.n_subjects=20", TINY_GRID)


def test_ukb_sex_is_the_label_and_men_have_larger_heads(compose_config):
    strength = "data.synthetic.tasks.ukb.effect_strength=1"  # the sizes as written
    cfg = compose_config("data_synth", ["task=ukb", "data.synthetic.n_subjects=400", strength])
    plan = plan_cohort(synthetic_spec(cfg))
    assert (plan["male"] == plan["label"]).all()
    assert plan["label"].sum() == round(400 * 0.458)
    men, women = (plan.loc[plan["label"] == k, "log_head_scale"] for k in (1, 0))
    assert np.expm1(men.mean() - women.mean()) == pytest.approx(0.035, abs=0.01)


def test_the_same_seed_gives_the_same_plan(adni_settings):
    pd.testing.assert_frame_equal(plan_cohort(adni_settings), plan_cohort(adni_settings))
    other = settings_for(
        "task=adni", "data.synthetic.n_subjects=20", TINY_GRID, "data.synthetic.seed=1"
    )
    assert not plan_cohort(other)["age"].equals(plan_cohort(adni_settings)["age"])


@pytest.mark.parametrize("task", ["ukb", "adni", "ms"])
def test_class_balance_and_image_count_are_the_configured_ones(task: str):
    settings = settings_for(f"task={task}", "data.synthetic.n_subjects=20", TINY_GRID)
    plan = plan_cohort(settings)
    subjects = plan.drop_duplicates("subject_index")
    assert len(subjects) == 20
    assert subjects["label"].sum() == round(20 * float(settings.task["class_fraction"]))
    assert len(plan) == max(round(20 * float(settings.task["images_per_subject"])), 20)
    assert plan.groupby("subject_index")["label"].nunique().max() == 1
    assert list(plan["image_index"]) == list(range(len(plan)))


def test_every_subject_has_a_baseline_and_sessions_are_the_configured_visits(adni_settings):
    plan = plan_cohort(adni_settings)
    visits = list(adni_settings.task["visits"])
    assert set(plan["session"]) <= set(visits)
    assert plan.groupby("subject_index")["session"].first().eq(visits[0]).all()
    assert not plan.duplicated(["subject_index", "session"]).any()
    # visits in the configured order, without gaps, and ages rising with them
    for _, rows in plan.groupby("subject_index"):
        assert list(rows["session"]) == visits[: len(rows)]
        assert rows["age"].is_monotonic_increasing
    assert (
        plan["path"] == "images/" + plan["subject_id"] + "_" + plan["session"] + ".nii.gz"
    ).all()


def test_controls_have_no_severity_and_patients_some(adni_settings):
    plan = plan_cohort(adni_settings)
    assert (plan.loc[plan["label"] == 0, "severity"] == 0).all()
    assert (plan.loc[plan["label"] == 1, "severity"] > 0).all()
    names = effect_names(adni_settings.synthetic["anatomy"])
    assert {f"log_{name}" for name in [*names, HEAD_SCALE]} <= set(plan.columns)


def test_log_factors_are_zero_for_an_average_young_control(adni_settings):
    anatomy_cfg = adni_settings.synthetic["anatomy"]
    names = effect_names(anatomy_cfg)
    onset = float(anatomy_cfg["ageing"]["onset_years"])
    factors = subject_log_factors(
        anatomy_cfg,
        adni_settings.task,
        age=np.array([onset]),
        male=np.array([0.0]),
        severity=np.array([0.0]),
        natural=np.zeros((1, len(names))),
        natural_head=np.zeros(1),
    )
    assert set(factors) == {*names, HEAD_SCALE}
    assert all(values.tolist() == [0.0] for values in factors.values())
    ad = subject_log_factors(
        anatomy_cfg,
        adni_settings.task,
        np.array([onset]),
        np.array([0.0]),
        np.array([1.0]),
        np.zeros((1, len(names))),
        np.zeros(1),
    )
    assert ad["hippocampus"][0] == pytest.approx(np.log1p(-0.22))  # the class effect as written
    assert ad["ventricles"][0] > 0


def test_lesion_counts_scale_with_severity_in_patients_only():
    settings = settings_for("task=ms", "data.synthetic.n_subjects=4", TINY_GRID)
    lesions = settings.task["lesions"]
    means = lesion_count_means(settings.task, np.array([0, 1, 1]), np.array([0.0, 1.0, 2.0]))
    patients = float(lesions["patients"]["count_mean"]) * float(settings.task["effect_strength"])
    np.testing.assert_allclose(
        means, [float(lesions["controls"]["count_mean"]), patients, 2 * patients]
    )
    no_lesions = settings_for("task=adni", TINY_GRID).task
    assert lesion_count_means(no_lesions, np.array([0, 1]), np.array([0.0, 1.0])).tolist() == [0, 0]
