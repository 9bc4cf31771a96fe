"""Subject-level, label-stratified train / validation / test splits, deterministic from a seed.

A split maps each partition ('train', 'val', 'test') to its members, sorted. A member is a subject
id (all of the subject's images), or, when the training subset is drawn by image, a subject id
with the rows of the images it keeps: 'S_0001@rows:12,15' (rows of the cohort's index, the
manifest's order, as test_predictions.csv's `row`). Either way a partition has one member per
subject, so its length is its number of distinct subjects.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from pifexp.data.manifest import LABEL, SUBJECT
from pifexp.errors import ConfigError, PifexpError

PARTITIONS = ("train", "val", "test")
SUBSET_UNITS = ("subject", "image")  # what data.subset counts
SUBSET_SCOPES = ("train", "cohort")  # what it is drawn from: the training subjects, or everyone
ROWS_MARK = "@rows:"


@dataclass(frozen=True)
class SplitSpec:
    """How a repeat's split is drawn (task.split and data.subset*).

    Test: test_fraction of the subjects, or test_per_class subjects of each class (exactly one of
    the two is set); validation likewise from the subjects left; training: the rest. Per-class
    counts are for a cohort of `counts_for_subjects` subjects when that is set: a smaller cohort
    gets proportionally fewer (at least 1 per class), so that the paper's counts also fit the quick
    profile's and the tests' small cohorts. `subset` < 1
    keeps that share of `subset_unit` (subjects, or images) drawn from `subset_scope`: the training
    subjects (validation and test stay as they are), or the whole cohort before the test split
    (every partition shrinks). `train_subjects` keeps that many of the training subjects
    instead (validation and test stay as they are), stratified by label and nested: with one
    seed, a smaller number keeps a subset of the subjects that a larger one keeps, so a curve
    over numbers adds subjects rather than drawing new ones. `fixed_seed`: every repeat gets the
    split drawn with this seed instead of its own.
    """

    test_fraction: float | None
    val_fraction: float | None
    subset: float = 1.0
    test_per_class: int | None = None
    val_per_class: int | None = None
    subset_unit: str = "subject"
    subset_scope: str = "train"
    fixed_seed: int | None = None
    counts_for_subjects: int | None = None
    train_subjects: int | None = None

    def __post_init__(self) -> None:
        for partition in ("test", "val"):
            _check_size(partition, getattr(self, f"{partition}_fraction"),
                        getattr(self, f"{partition}_per_class"))  # fmt: skip
        _check_fraction("data.subset", self.subset, below_one=False)
        if self.subset_unit not in SUBSET_UNITS:
            raise ConfigError(
                f"data.subset_unit={self.subset_unit!r} must be one of {', '.join(SUBSET_UNITS)}"
            )
        if self.subset_scope not in SUBSET_SCOPES:
            raise ConfigError(
                f"data.subset_scope={self.subset_scope!r} must be one of "
                f"{', '.join(SUBSET_SCOPES)}"
            )
        if self.subset_unit == "image" and self.subset_scope == "cohort":
            raise ConfigError(
                "data.subset_unit=image draws images of the training subjects: it needs "
                "data.subset_scope=train"
            )
        if self.fixed_seed is not None:
            _check_count("task.split.fixed_seed", self.fixed_seed, low=0)
        if self.counts_for_subjects is not None:
            _check_count("task.split.counts_for_subjects", self.counts_for_subjects, low=1)
        if self.train_subjects is not None:
            _check_count("data.train_subjects", self.train_subjects, low=2)
            if self.subset < 1:
                raise ConfigError(
                    f"data.train_subjects={self.train_subjects} and data.subset={self.subset} "
                    "both shrink the training set: set one of them (data.subset=1 or "
                    "data.train_subjects=null)"
                )


def subject_labels(manifest_df: pd.DataFrame) -> pd.Series:
    """One label per subject, subjects sorted; a subject with images of both classes counts as
    label 1 (as the paper split ADNI converters)."""
    return manifest_df.groupby(SUBJECT)[LABEL].max().sort_index()


def draw_split(manifest_df: pd.DataFrame, spec: SplitSpec, seed: int) -> dict[str, list[str]]:
    """The members of each partition ('train', 'val', 'test'), each sorted, for the repeat whose
    seed is `seed` (or spec.fixed_seed for every repeat).

    Every draw is stratified by label (per-class counts are per class already). Subjects are
    sorted before drawing, so the split depends on the seed and the cohort, not the row order.
    """
    seed = seed if spec.fixed_seed is None else spec.fixed_seed
    labels = subject_labels(manifest_df)
    subjects, y = labels.index.to_numpy(), labels.to_numpy()
    small = spec.subset < 1
    if small and spec.subset_scope == "cohort":
        _, subjects, _, y = _draw(subjects, y, spec.subset, seed, "data.subset", both_sides=False)
    cohort_size = len(subjects)
    rest, test, rest_y = _held_out(subjects, y, spec, "test", seed, cohort_size)
    train, val, train_y = _held_out(rest, rest_y, spec, "val", seed, cohort_size)
    members = list(map(str, train))
    if small and spec.subset_scope == "train" and spec.subset_unit == "subject":
        # the subjects left out are unused, so only the drawn ones need both classes
        _, drawn, _, _ = _draw(train, train_y, spec.subset, seed, "data.subset", both_sides=False)
        members = list(map(str, drawn))
    elif small and spec.subset_scope == "train":
        members = _image_subset(manifest_df, members, spec.subset, seed)
    if spec.train_subjects is not None:
        members = _nested_subjects(train, train_y, spec.train_subjects, seed)
    return {"train": sorted(members), "val": sorted(map(str, val)), "test": sorted(map(str, test))}


def split_subjects(
    manifest_df: pd.DataFrame,
    seed: int,
    test_fraction: float,
    val_fraction: float,
    subset: float = 1.0,
) -> dict[str, list[str]]:
    """Subject ids per partition with fractions only: test_fraction of the subjects to test,
    val_fraction of the rest to validation, `subset` of the training subjects kept (see
    draw_split)."""
    return draw_split(manifest_df, SplitSpec(test_fraction, val_fraction, subset), seed)


def partition_rows(
    manifest_df: pd.DataFrame, split: Mapping[str, Sequence[str]]
) -> dict[str, np.ndarray]:
    """Row positions (into the manifest or its cache), sorted, of each partition's images."""
    subject_ids = manifest_df[SUBJECT].astype(str).to_numpy()
    return {
        partition: _member_rows(subject_ids, members, partition)
        for partition, members in split.items()
    }


def _member_rows(subject_ids: np.ndarray, members: Sequence[str], partition: str) -> np.ndarray:
    whole, listed, listed_subjects = [], [], []
    for member in map(str, members):
        subject, mark, rows = member.partition(ROWS_MARK)
        if not mark:
            whole.append(subject)
            continue
        kept = [int(row) for row in rows.split(",")]
        listed += kept
        listed_subjects += [subject] * len(kept)
    rows = np.asarray(listed, dtype=int)
    outside = len(rows) and rows.max() >= len(subject_ids)
    if outside or (subject_ids[rows] != np.asarray(listed_subjects, dtype=str)).any():
        raise PifexpError(f"the split's {partition} partition lists rows of other subjects")
    return np.union1d(np.flatnonzero(np.isin(subject_ids, whole)), rows)


def _held_out(
    subjects: np.ndarray,
    labels: np.ndarray,
    spec: SplitSpec,
    partition: str,
    seed: int,
    cohort_size: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(kept, drawn, kept labels): the test or validation subjects drawn from `subjects`, of a
    cohort of `cohort_size` subjects."""
    per_class = getattr(spec, f"{partition}_per_class")
    reference = spec.counts_for_subjects
    if per_class is not None and reference is not None and cohort_size < reference:
        per_class = max(1, round(per_class * cohort_size / reference))
    if per_class is None:
        fraction = getattr(spec, f"{partition}_fraction")
        kept, drawn, kept_y, _ = _draw(
            subjects, labels, fraction, seed, f"task.split.{partition}_fraction"
        )
        return kept, drawn, kept_y
    rng = np.random.default_rng(seed)
    drawn = np.zeros(len(subjects), dtype=bool)
    for label in (0, 1):
        members = np.flatnonzero(labels == label)
        if len(members) <= per_class:  # at least one left for the partitions after this one
            raise PifexpError(
                f"task.split.{partition}_per_class={per_class} needs more than {per_class} "
                f"subjects of each class; label {label} has {len(members)}"
            )
        drawn[rng.choice(members, per_class, replace=False)] = True
    return subjects[~drawn], subjects[drawn], labels[~drawn]


def _nested_subjects(
    subjects: np.ndarray, labels: np.ndarray, count: int, seed: int
) -> list[str]:
    """`count` of the subjects, stratified by label: each class's subjects in a seeded random
    order, the first of each taken in proportion to the class's share (largest remainders), so
    that a smaller count keeps a subset of a larger one's subjects."""
    if count > len(subjects):
        raise PifexpError(
            f"data.train_subjects={count} is more than the {len(subjects)} training subjects of "
            "the split; use a smaller number or null (all of them)"
        )
    rng = np.random.default_rng(seed)
    classes = np.unique(labels)
    order = {c: rng.permutation(np.sort(subjects[labels == c])) for c in classes}
    exact = np.array([count * len(order[c]) / len(subjects) for c in classes])
    taken = np.floor(exact).astype(int)
    for index in np.argsort(taken - exact)[: count - taken.sum()]:
        taken[index] += 1
    if (taken < 1).any():
        raise PifexpError(
            f"data.train_subjects={count} leaves a class without training subjects"
        )
    return [str(subject) for c, n in zip(classes, taken, strict=True) for subject in order[c][:n]]


def _image_subset(
    manifest_df: pd.DataFrame, subjects: list[str], fraction: float, seed: int
) -> list[str]:
    """`fraction` of the images of `subjects`, stratified by image label, as split members."""
    subject_ids = manifest_df[SUBJECT].astype(str).to_numpy()
    rows = np.flatnonzero(np.isin(subject_ids, subjects))
    labels = manifest_df[LABEL].to_numpy()[rows]
    _, drawn, _, _ = _draw(rows, labels, fraction, seed, "data.subset", both_sides=False,
                           unit="images")  # fmt: skip
    drawn = np.sort(drawn)
    images_per_subject = pd.Series(subject_ids).value_counts()
    members = []
    for subject, kept in pd.Series(drawn).groupby(subject_ids[drawn]):
        whole = len(kept) == images_per_subject[subject]
        members.append(subject if whole else f"{subject}{ROWS_MARK}{','.join(map(str, kept))}")
    return members


def _check_size(partition: str, fraction: float | None, per_class: int | None) -> None:
    name = f"task.split.{partition}"
    if (fraction is None) == (per_class is None):
        raise ConfigError(
            f"{name}_fraction={fraction} and {name}_per_class={per_class}: set exactly one of "
            "them (the other null)"
        )
    if fraction is not None:
        _check_fraction(f"{name}_fraction", fraction, below_one=True)
    else:
        _check_count(f"{name}_per_class", per_class, low=1)


def _check_fraction(name: str, value: float, below_one: bool) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{name}={value!r} must be a number")
    if not 0 < value <= 1 or (below_one and value == 1):
        raise ConfigError(f"{name}={value} must be > 0 and {'< 1' if below_one else '<= 1'}")


def _check_count(name: str, value: object, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"{name}={value!r} must be an integer >= {low}")


def _draw(
    items: np.ndarray,
    labels: np.ndarray,
    fraction: float,
    seed: int,
    setting: str,
    both_sides: bool = True,
    unit: str = "subjects",
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(kept, drawn, kept labels, drawn labels): a stratified draw of `fraction` of the items."""
    if fraction == 1:
        empty = items[:0]
        return empty, items, labels[:0], labels
    try:
        kept, drawn, kept_y, drawn_y = train_test_split(
            items, labels, test_size=fraction, random_state=seed, stratify=labels
        )
    except ValueError as error:
        counts = {int(label): int((labels == label).sum()) for label in np.unique(labels)}
        raise PifexpError(
            f"cannot draw {setting}={fraction} of {len(items)} {unit} stratified by label "
            f"({unit} per label: {counts}): {error}"
        ) from None
    if len(set(drawn_y)) < 2 or (both_sides and len(set(kept_y)) < 2):
        raise PifexpError(
            f"{setting}={fraction} of {len(items)} {unit} leaves a partition with one class"
        )
    return kept, drawn, kept_y, drawn_y
