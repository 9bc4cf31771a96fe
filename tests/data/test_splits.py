"""Subject-level splits: disjoint, complete, stratified, seeded; subset from training only."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pifexp.data.splits import (
    PARTITIONS,
    SplitSpec,
    partition_rows,
    split_subjects,
    subject_labels,
)
from pifexp.errors import ConfigError


def cohort(n_subjects: int, images: int = 1, seed: int = 0) -> pd.DataFrame:
    """A manifest-like frame; subject i has 1..images images, label by a seeded draw."""
    rng = np.random.default_rng(seed)
    labels = np.resize([0, 1], n_subjects)
    rng.shuffle(labels)
    rows = [
        {"subject_id": f"s{subject:03d}", "label": int(labels[subject]), "session": str(visit)}
        for subject in range(n_subjects)
        for visit in range(rng.integers(1, images + 1))
    ]
    return pd.DataFrame(rows)


@settings(max_examples=25, deadline=None)
@given(
    n_subjects=st.integers(20, 80),
    images=st.integers(1, 3),
    seed=st.integers(0, 2**31 - 1),
    subset=st.sampled_from([1.0, 0.5, 0.2]),
)
def test_no_subject_in_two_partitions(n_subjects, images, seed, subset):
    frame = cohort(n_subjects, images, seed)
    split = split_subjects(frame, seed, 0.2, 0.2, subset)
    members = [set(split[name]) for name in PARTITIONS]
    assert all(not (a & b) for i, a in enumerate(members) for b in members[i + 1 :])
    if subset == 1.0:
        assert set().union(*members) == set(frame["subject_id"])
    rows = partition_rows(frame, split)
    # every image of a subject lies in its subject's partition
    for name in PARTITIONS:
        assert set(frame["subject_id"].iloc[rows[name]]) == set(split[name])


def test_same_seed_same_split_and_other_seed_other_split():
    frame = cohort(60, images=3)
    assert split_subjects(frame, 7, 0.2, 0.2) == split_subjects(frame, 7, 0.2, 0.2)
    assert split_subjects(frame, 7, 0.2, 0.2) != split_subjects(frame, 8, 0.2, 0.2)


def test_row_order_does_not_matter():
    frame = cohort(60, images=2)
    shuffled = frame.sample(frac=1.0, random_state=3)
    assert split_subjects(frame, 1, 0.2, 0.2) == split_subjects(shuffled, 1, 0.2, 0.2)


def test_fractions_and_stratification():
    frame = cohort(100)
    split = split_subjects(frame, 0, 0.2, 0.2)
    assert [len(split[name]) for name in PARTITIONS] == [64, 16, 20]
    labels = subject_labels(frame)
    for name in PARTITIONS:
        assert labels[split[name]].mean() == pytest.approx(0.5, abs=0.07)


def test_subset_draws_from_training_only():
    frame = cohort(100, images=2)
    full = split_subjects(frame, 5, 0.2, 0.2)
    small = split_subjects(frame, 5, 0.2, 0.2, subset=0.2)
    assert small["val"] == full["val"] and small["test"] == full["test"]
    assert set(small["train"]) < set(full["train"])
    assert len(small["train"]) == round(0.2 * len(full["train"]))
    assert set(subject_labels(frame)[small["train"]]) == {0, 1}


def test_subjects_with_both_labels_split_as_positive():
    frame = cohort(40)
    converter = frame["subject_id"].iloc[0]
    frame.loc[0, "label"] = 0
    frame.loc[len(frame)] = {"subject_id": converter, "label": 1, "session": "9"}
    assert subject_labels(frame)[converter] == 1


@pytest.mark.parametrize("fractions", [(0.0, 0.2, 1.0), (0.2, 1.0, 1.0), (0.2, 0.2, 0.0)])
def test_bad_fractions_are_named(fractions):
    with pytest.raises(ConfigError, match="fraction|subset"):
        split_subjects(cohort(40), 0, *fractions)
    with pytest.raises(ConfigError, match="fraction|subset"):
        SplitSpec(*fractions)
