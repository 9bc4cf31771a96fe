"""Subject-level splits: disjoint, complete, stratified, seeded; test and validation by fraction
or per-class count; subsets by subject or image, from training or the whole cohort; fixed splits."""

from __future__ import annotations

import re
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pifexp.data.splits import (
    PARTITIONS,
    ROWS_MARK,
    SplitSpec,
    draw_split,
    partition_rows,
    split_subjects,
    subject_labels,
)
from pifexp.errors import ConfigError, PifexpError


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


def adni_like(ad: int = 193, cn: int = 151, seed: int = 0) -> pd.DataFrame:
    """`ad` + `cn` subjects with 1..5 images each (the paper's ADNI cohort: 193 + 151 subjects)."""
    rng = np.random.default_rng(seed)
    rows = [
        {"subject_id": f"s{subject:03d}", "label": int(subject < ad), "session": f"m{visit:02d}"}
        for subject in range(ad + cn)
        for visit in range(rng.integers(1, 6))
    ]
    return pd.DataFrame(rows)


def per_class(frame: pd.DataFrame, members: list[str]) -> list[int]:
    labels = subject_labels(frame)[members]
    return [int((labels == 0).sum()), int((labels == 1).sum())]


def test_per_class_counts_draw_that_many_subjects_of_each_class():
    frame = adni_like()
    split = draw_split(frame, SplitSpec(None, None, test_per_class=30, val_per_class=18), 3)
    assert per_class(frame, split["test"]) == [30, 30]
    assert per_class(frame, split["val"]) == [18, 18]
    assert per_class(frame, split["train"]) == [151 - 48, 193 - 48]
    assert split != draw_split(frame, SplitSpec(None, None, test_per_class=30, val_per_class=18), 4)


def test_per_class_counts_for_a_larger_cohort_shrink_with_the_cohort():
    spec = SplitSpec(None, None, test_per_class=30, val_per_class=18, counts_for_subjects=344)
    assert draw_split(adni_like(), spec, 0) == draw_split(adni_like(), replace(
        spec, counts_for_subjects=None), 0)  # fmt: skip
    quick = adni_like(36, 36)  # 72 subjects: 30 * 72 / 344 = 6.3, 18 * 72 / 344 = 3.8
    split = draw_split(quick, spec, 0)
    assert per_class(quick, split["test"]) == [6, 6] and per_class(quick, split["val"]) == [4, 4]
    tiny = adni_like(8, 8)  # at least one subject of each class
    split = draw_split(tiny, spec, 0)
    assert per_class(tiny, split["test"]) == [1, 1] and per_class(tiny, split["val"]) == [1, 1]


def test_per_class_counts_larger_than_a_class_are_refused():
    with pytest.raises(PifexpError, match="task.split.test_per_class=40 needs more than 40"):
        draw_split(adni_like(50, 40), SplitSpec(None, 0.2, test_per_class=40), 0)


def test_a_subset_of_the_whole_cohort_shrinks_validation_and_test():
    frame = cohort(200)
    full = draw_split(frame, SplitSpec(0.2, 0.2), 5)
    small = draw_split(frame, SplitSpec(0.2, 0.2, 0.2, subset_scope="cohort"), 5)
    # 40 subjects drawn before the test split: 8 test, 7 validation (rounded up), 25 training
    assert [len(small[name]) for name in PARTITIONS] == [25, 7, 8]
    assert [len(full[name]) for name in PARTITIONS] == [128, 32, 40]
    members = [set(small[name]) for name in PARTITIONS]
    assert not (members[0] & members[1] or members[0] & members[2] or members[1] & members[2])
    for name in PARTITIONS:
        assert set(subject_labels(frame)[small[name]]) == {0, 1}


def test_a_subset_by_image_keeps_a_share_of_the_training_images():
    frame = adni_like()
    spec = SplitSpec(None, None, test_per_class=30, val_per_class=18)
    full = draw_split(frame, spec, 7)
    small = draw_split(frame, replace(spec, subset=0.2, subset_unit="image"), 7)
    assert small["val"] == full["val"] and small["test"] == full["test"]
    full_rows, small_rows = partition_rows(frame, full), partition_rows(frame, small)
    assert set(small_rows["train"]) < set(full_rows["train"])
    assert len(small_rows["train"]) == round(0.2 * len(full_rows["train"]))
    assert set(frame.label.iloc[small_rows["train"]]) == {0, 1}
    # drawn by image: some subjects keep only some of their images, named with their rows
    partial = [member for member in small["train"] if ROWS_MARK in member]
    assert partial
    subject, _, rows = partial[0].partition(ROWS_MARK)
    kept = [int(row) for row in rows.split(",")]
    assert set(frame.subject_id.iloc[kept]) == {subject}
    assert len(kept) < (frame.subject_id == subject).sum()
    # one member per subject: the partition's length is its number of distinct subjects
    assert len(small["train"]) == frame.subject_id.iloc[small_rows["train"]].nunique()


def test_a_fixed_seed_gives_every_repeat_the_same_split():
    frame = cohort(80, images=2)
    spec = SplitSpec(0.2, 0.2, 0.5, fixed_seed=11)
    splits = [draw_split(frame, spec, seed) for seed in range(10)]
    assert all(split == splits[0] for split in splits)
    assert splits[0] == draw_split(frame, replace(spec, fixed_seed=None), 11)
    assert draw_split(frame, replace(spec, fixed_seed=None), 0) != splits[0]


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"test_fraction": 0.2, "test_per_class": 30}, "set exactly one of them"),
        ({"val_fraction": None}, "set exactly one of them"),
        ({"test_fraction": None, "test_per_class": 0}, "test_per_class=0 must be an integer >= 1"),
        ({"subset_unit": "visit"}, "data.subset_unit='visit' must be one of subject, image"),
        ({"subset_scope": "all"}, "data.subset_scope='all' must be one of train, cohort"),
        ({"subset_unit": "image", "subset_scope": "cohort"}, "needs data.subset_scope=train"),
        ({"fixed_seed": -1}, "task.split.fixed_seed=-1 must be an integer >= 0"),
    ],
)
def test_bad_split_settings_are_named(settings, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        SplitSpec(**{"test_fraction": 0.2, "val_fraction": 0.2, **settings})


@settings(max_examples=20, deadline=None)
@given(n_subjects=st.integers(40, 120), seed=st.integers(0, 2**31 - 1))
def test_train_subjects_keeps_that_many_nested_and_stratified(n_subjects, seed):
    frame = cohort(n_subjects, images=2, seed=seed)
    spec = SplitSpec(test_fraction=0.2, val_fraction=0.2)
    full = draw_split(frame, spec, seed)
    labels = subject_labels(frame)
    kept = {}
    for count in (4, 10, len(full["train"])):
        split = draw_split(frame, replace(spec, train_subjects=count), seed)
        assert len(split["train"]) == count
        # validation and test stay the full setting's
        assert split["val"] == full["val"] and split["test"] == full["test"]
        share = labels[split["train"]].mean()
        assert abs(share - labels[full["train"]].mean()) <= 1 / count + 1e-9
        kept[count] = set(split["train"])
    assert kept[4] < kept[10] <= kept[len(full["train"])] == set(full["train"])


def test_train_subjects_beyond_the_training_set_or_beside_a_subset_is_named():
    frame = cohort(40)
    spec = SplitSpec(test_fraction=0.2, val_fraction=0.2, train_subjects=500)
    with pytest.raises(PifexpError, match="data.train_subjects=500 is more than the"):
        draw_split(frame, spec, 0)
    with pytest.raises(ConfigError, match="data.train_subjects=10 and data.subset=0.2"):
        SplitSpec(test_fraction=0.2, val_fraction=0.2, subset=0.2, train_subjects=10)
    with pytest.raises(ConfigError, match="data.train_subjects=1 must be an integer >= 2"):
        SplitSpec(test_fraction=0.2, val_fraction=0.2, train_subjects=1)
