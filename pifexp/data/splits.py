"""Subject-level, label-stratified train / validation / test splits, deterministic from a seed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from pifexp.data.manifest import LABEL, SUBJECT
from pifexp.errors import ConfigError, PifexpError

PARTITIONS = ("train", "val", "test")


@dataclass(frozen=True)
class SplitSpec:
    """How a seed's split is drawn: test_fraction of the subjects to test, val_fraction of the
    rest to validation, and `subset` of the training subjects kept (1: all)."""

    test_fraction: float
    val_fraction: float
    subset: float = 1.0

    def __post_init__(self) -> None:
        _check_fractions(self.test_fraction, self.val_fraction, self.subset)


def subject_labels(manifest_df: pd.DataFrame) -> pd.Series:
    """One label per subject, subjects sorted; a subject with images of both classes counts as
    label 1 (as the paper split ADNI converters)."""
    return manifest_df.groupby(SUBJECT)[LABEL].max().sort_index()


def split_subjects(
    manifest_df: pd.DataFrame,
    seed: int,
    test_fraction: float,
    val_fraction: float,
    subset: float = 1.0,
) -> dict[str, list[str]]:
    """Subject ids per partition ('train', 'val', 'test'), each sorted.

    test_fraction of the subjects go to test, val_fraction of the rest to validation, and the
    remainder to training; each draw is stratified by label. subset < 1 keeps that fraction of the
    training subjects (stratified) and leaves validation and test as they are. The subjects are
    sorted before drawing, so the split depends on the seed and the cohort, not the row order.
    """
    _check_fractions(test_fraction, val_fraction, subset)
    labels = subject_labels(manifest_df)
    subjects, y = labels.index.to_numpy(), labels.to_numpy()
    rest, test, rest_y, _ = _draw(subjects, y, test_fraction, seed, "test_fraction")
    train, val, train_y, _ = _draw(rest, rest_y, val_fraction, seed, "val_fraction")
    if subset < 1:
        # the subjects left out are unused, so only the drawn ones need both classes
        _, train, _, _ = _draw(train, train_y, subset, seed, "subset", both_sides=False)
    return {
        "train": sorted(map(str, train)),
        "val": sorted(map(str, val)),
        "test": sorted(map(str, test)),
    }


def _check_fractions(test_fraction: float, val_fraction: float, subset: float) -> None:
    for name, value, low_open in (
        ("test_fraction", test_fraction, True),
        ("val_fraction", val_fraction, True),
        ("subset", subset, False),
    ):
        if not 0 < value <= 1 or (low_open and value == 1):
            upper = "< 1" if low_open else "<= 1"
            raise ConfigError(f"{name}={value} must be > 0 and {upper}")


def partition_rows(
    manifest_df: pd.DataFrame, split: Mapping[str, Sequence[str]]
) -> dict[str, np.ndarray]:
    """Row positions (into the manifest or its cache) of each partition's subjects' images."""
    subject_ids = manifest_df[SUBJECT].astype(str).to_numpy()
    return {
        partition: np.flatnonzero(np.isin(subject_ids, list(members)))
        for partition, members in split.items()
    }


def _draw(
    subjects: np.ndarray,
    labels: np.ndarray,
    fraction: float,
    seed: int,
    setting: str,
    both_sides: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(kept, drawn, kept labels, drawn labels): a stratified draw of `fraction` of the subjects."""
    if fraction == 1:
        empty = subjects[:0]
        return empty, subjects, labels[:0], labels
    try:
        kept, drawn, kept_y, drawn_y = train_test_split(
            subjects, labels, test_size=fraction, random_state=seed, stratify=labels
        )
    except ValueError as error:
        counts = {int(label): int((labels == label).sum()) for label in np.unique(labels)}
        raise PifexpError(
            f"cannot draw {setting}={fraction} of {len(subjects)} subjects stratified by label "
            f"(subjects per label: {counts}): {error}"
        ) from None
    if len(set(drawn_y)) < 2 or (both_sides and len(set(kept_y)) < 2):
        raise PifexpError(
            f"{setting}={fraction} of {len(subjects)} subjects leaves a partition with one class"
        )
    return kept, drawn, kept_y, drawn_y
