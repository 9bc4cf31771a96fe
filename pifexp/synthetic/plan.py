"""The cohort plan: one row per image with every number the image is drawn from.

Pure functions of the settings. The plan draws from its own random stream of the seed; every
subject and image has a stream of its own too (`rng`), so that an image's pixels depend on its
row and the seed only, whatever process draws them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from pifexp.synthetic.settings import HEAD_SCALE, IMAGES_DIR, CohortSettings, effect_names

# independent random streams (spawn keys) of one seed
PLAN_STREAM, SUBJECT_STREAM, IMAGE_STREAM = 0, 1, 2
MONTHS_PER_YEAR = 12.0


def rng(seed: int, *stream: int) -> np.random.Generator:
    """The random generator of one stream (spawn key) of the seed."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=tuple(stream)))


def plan_cohort(settings: CohortSettings) -> pd.DataFrame:
    """One row per image: who, when, which class, and every per-subject and per-image number the
    image is drawn from (log volume factors, head size, gains, noise level, lesion load)."""
    synthetic, task = settings.synthetic, settings.task
    generator = rng(settings.seed, PLAN_STREAM)
    n_subjects = settings.n_subjects
    labels = _draw_labels(generator, n_subjects, float(task["class_fraction"]))
    visit_counts = _draw_visit_counts(generator, labels, task)
    subjects = _draw_subjects(generator, labels, task, synthetic)

    visits = list(task["visits"].items())
    subject = np.repeat(np.arange(n_subjects), visit_counts)
    visit = np.concatenate([np.arange(count) for count in visit_counts])
    years = np.array([visits[v][1] for v in visit], dtype=float) / MONTHS_PER_YEAR
    age = subjects["baseline_age"][subject] + years
    severity = subjects["severity"][subject] * (1.0 + float(task["progression_per_year"]) * years)
    image_log_scale = generator.normal(
        0.0, float(synthetic["intensity"]["image_scale_sd"]), subject.size
    )

    width = len(str(n_subjects))
    subject_ids = np.array([f"sub-{i + 1:0{width}d}" for i in range(n_subjects)])
    sessions = np.array([visits[v][0] for v in visit])
    site = subjects["site"][subject]
    plan = pd.DataFrame(
        {
            "image_index": np.arange(subject.size),
            "subject_index": subject,
            "subject_id": subject_ids[subject],
            "session": sessions,
            "path": [
                f"{IMAGES_DIR}/{s}_{v}.nii.gz"
                for s, v in zip(subject_ids[subject], sessions, strict=True)
            ],
            "label": labels[subject],
            "age": age,
            "male": subjects["male"][subject],
            "site": site,
            "severity": severity,
            "lesion_count_mean": subjects["lesion_count_mean"][subject],
            "log_intensity_scale": subjects["site_log_scale"][site] + image_log_scale,
            "log_noise": subjects["site_log_noise"][site],
        }
    )
    log_factors = subject_log_factors(
        synthetic["anatomy"],
        task,
        age,
        subjects["male"][subject],
        severity,
        subjects["natural"][subject],
        subjects["natural_head"][subject],
    )
    for name, values in log_factors.items():
        plan[f"log_{name}"] = values
    return plan


def _draw_labels(generator: np.random.Generator, n_subjects: int, fraction: float) -> np.ndarray:
    """Class 1 for round(n_subjects * fraction) subjects (at least one of each class)."""
    n_positive = int(np.clip(round(n_subjects * fraction), 1, n_subjects - 1))
    labels = np.zeros(n_subjects, dtype=int)
    labels[generator.permutation(n_subjects)[:n_positive]] = 1
    return labels


def _draw_visit_counts(
    generator: np.random.Generator, labels: np.ndarray, task: Mapping[str, Any]
) -> np.ndarray:
    """Images per subject: every subject has a baseline; each class's extra images (to reach
    images_per_subject and the class fraction) take (subject, later visit) slots at random."""
    n_subjects = labels.size
    fraction = float(task["class_fraction"])
    n_images = max(round(n_subjects * float(task["images_per_subject"])), n_subjects)
    images_positive = round(n_images * fraction)
    later_visits = len(task["visits"]) - 1
    visit_counts = np.ones(n_subjects, dtype=int)
    for label, class_images in ((0, n_images - images_positive), (1, images_positive)):
        members = np.flatnonzero(labels == label)
        extra = int(np.clip(class_images - members.size, 0, members.size * later_visits))
        if extra:
            slots = generator.choice(members.size * later_visits, size=extra, replace=False)
            visit_counts[members] += np.bincount(slots // later_visits, minlength=members.size)
    return visit_counts


def _draw_subjects(
    generator: np.random.Generator,
    labels: np.ndarray,
    task: Mapping[str, Any],
    synthetic: Mapping[str, Any],
) -> dict[str, np.ndarray]:
    """Per subject: baseline age, sex, site, natural variation, severity and lesion load; per
    site: log gain and log noise level. Drawn in this order from the plan's stream."""
    n_subjects = labels.size
    intensity = synthetic["intensity"]
    age_cfg = task["age"]
    mean, sd = float(age_cfg["mean"]), float(age_cfg["sd"])
    low = (float(age_cfg["min"]) - mean) / sd
    high = (float(age_cfg["max"]) - mean) / sd
    baseline_age = stats.truncnorm.ppf(generator.random(n_subjects), low, high, loc=mean, scale=sd)
    male = (
        labels.copy()
        if task["sex_is_label"]
        else (generator.random(n_subjects) < float(task["male_fraction"])).astype(int)
    )
    sites = int(task["sites"])
    site = generator.integers(sites, size=n_subjects)
    site_log_scale = generator.normal(0.0, float(intensity["site_scale_sd"]), sites)
    site_log_noise = generator.normal(0.0, float(intensity["site_noise_sd"]), sites)
    natural = generator.standard_normal((n_subjects, len(effect_names(synthetic["anatomy"]))))
    natural_head = generator.standard_normal(n_subjects)
    severity_sd = float(task["severity_sd"])
    severity = labels * np.exp(generator.normal(-0.5 * severity_sd**2, severity_sd, n_subjects))
    return {
        "baseline_age": baseline_age,
        "male": male,
        "site": site,
        "site_log_scale": site_log_scale,
        "site_log_noise": site_log_noise,
        "natural": natural,
        "natural_head": natural_head,
        "severity": severity,
        "lesion_count_mean": lesion_count_means(task, labels, severity),
    }


def subject_log_factors(
    anatomy_cfg: Mapping[str, Any],
    task: Mapping[str, Any],
    age: np.ndarray,
    male: np.ndarray,
    severity: np.ndarray,
    natural: np.ndarray,
    natural_head: np.ndarray,
) -> dict[str, np.ndarray]:
    """Log volume factor of every region, the cortex and the ventricles, and the log head scale:
    natural variation + ageing + sex + class signal (scaled by severity and effect strength)."""
    strength = float(task["effect_strength"])
    sex_effects = anatomy_cfg["sex_effects"] or {}
    class_effects = task.get("class_effects") or {}
    sex_weight = strength if task["sex_is_label"] else 1.0
    ageing = anatomy_cfg["ageing"]
    years_aged = np.maximum(np.asarray(age, float) - float(ageing["onset_years"]), 0.0)

    def signal(name: str) -> np.ndarray:
        return (
            np.log1p(float(sex_effects.get(name, 0.0))) * sex_weight * male
            + np.log1p(float(class_effects.get(name, 0.0))) * strength * severity
        )

    factors = {}
    for column, name in enumerate(effect_names(anatomy_cfg)):
        factors[name] = (
            float(anatomy_cfg["variation"].get(name, 0.0)) * natural[..., column]
            + np.log1p(float(ageing["per_year"].get(name, 0.0))) * years_aged
            + signal(name)
        )
    factors[HEAD_SCALE] = float(anatomy_cfg["head_scale_sd"]) * natural_head + signal(HEAD_SCALE)
    return factors


def lesion_count_means(
    task: Mapping[str, Any], labels: np.ndarray, base_severity: np.ndarray
) -> np.ndarray:
    """Mean lesion count per subject: patients' scales with effect strength and severity."""
    lesions = task.get("lesions")
    if not lesions:
        return np.zeros(labels.size)
    patients = float(lesions["patients"]["count_mean"]) * float(task["effect_strength"])
    return np.where(labels == 1, patients * base_severity, float(lesions["controls"]["count_mean"]))
