"""The images `pifexp interpret` maps: each seed's test images (its test_predictions.csv) from the
run's own cohort, or every image of a manifest given on the command line; one image per subject
unless every image is asked for, each with a file name of its own."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from pifexp.data.cache import CachedCohort
from pifexp.data.manifest import LABEL, PATH, SESSION, SUBJECT
from pifexp.experiments import rundir
from pifexp.experiments.apply.finished import FinishedRun
from pifexp.experiments.apply.new_images import (
    ImagesSpec,
    images_cohort,
    read_images,
    rows_of,
    run_cohort,
)


def volume_batches(cohort: CachedCohort, rows: np.ndarray, size: int) -> Iterator[torch.Tensor]:
    """(B, 1, D, H, W) batches of the cached volumes at these rows, in this order."""
    for start in range(0, len(rows), size):
        chunk = np.asarray(cohort.volumes[rows[start : start + size]], np.float32)
        yield torch.from_numpy(chunk).unsqueeze(1)


def seed_images(
    run: FinishedRun,
    seeds: tuple[tuple[int, Path], ...],
    images: ImagesSpec,
    one_per_subject: bool,
    subjects_per_class: int | None,
) -> tuple[CachedCohort, dict[int, pd.DataFrame]]:
    """The cohort and, per seed, the images to map (subject_id, session, label, path, name, row
    in the cohort's cache): the seed's test images (test_predictions.csv), or every image of
    images.manifest."""
    if images.manifest is not None:
        manifest_df = read_images(images.manifest, run)
        cohort = images_cohort(manifest_df, run, images)
        chosen = choose(manifest_df.reset_index(drop=True), one_per_subject, subjects_per_class)
        chosen["row"] = rows_of(cohort, chosen[PATH].tolist(), str(images.manifest))
        return cohort, {seed: chosen for seed, _ in seeds}
    cohort = run_cohort(run, images)
    found = {}
    for seed, folder in seeds:
        predictions = rundir.read_predictions(folder)
        session = predictions.get(SESSION, pd.Series("", index=predictions.index))
        predictions[SESSION] = session.astype(object).fillna("").astype(str)
        predictions[SUBJECT] = predictions[SUBJECT].astype(str)
        chosen = choose(predictions, one_per_subject, subjects_per_class)
        where = str(folder / rundir.PREDICTIONS_FILE)
        chosen["row"] = rows_of(cohort, chosen[PATH].tolist(), where)
        found[seed] = chosen
    return cohort, found


def choose(
    images: pd.DataFrame, one_per_subject: bool, subjects_per_class: int | None
) -> pd.DataFrame:
    """One image per subject (its first) unless every image is asked for; at most
    subjects_per_class subjects of each class (the first ones); each with a file name of its
    own (name)."""
    chosen = images.drop_duplicates(SUBJECT) if one_per_subject else images
    if subjects_per_class is not None:
        subjects = chosen.drop_duplicates(SUBJECT).groupby(LABEL, sort=False)
        chosen = chosen[chosen[SUBJECT].isin(subjects.head(subjects_per_class)[SUBJECT])]
    chosen = chosen[[SUBJECT, SESSION, LABEL, PATH]].reset_index(drop=True)
    names = [
        safe_name(f"{subject}_{session}" if session else str(subject))
        for subject, session in zip(chosen[SUBJECT], chosen[SESSION], strict=True)
    ]
    repeated = pd.Series(names).duplicated(keep=False).to_numpy()
    chosen["name"] = [
        f"{name}_{i}" if twice else name
        for i, (name, twice) in enumerate(zip(names, repeated, strict=True))
    ]
    return chosen


def safe_name(name: str) -> str:
    """A file name made of letters, digits, '.', '_' and '-' only."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.") or "image"
