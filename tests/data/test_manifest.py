"""Reading a manifest: paths, labels, sessions, covariates."""

from __future__ import annotations

import pytest

from pifexp.data.manifest import describe_row, read_manifest
from pifexp.errors import PifexpError

CLASSES = ["CN", "AD"]


def test_rows_are_read_with_absolute_paths_integer_labels_and_covariates(make_cohort, cohort_dir):
    frame = read_manifest(make_cohort(n_subjects=4), CLASSES)
    assert list(frame.columns[:4]) == ["subject_id", "path", "label", "session"]
    assert frame["label"].tolist() == [0, 1, 0, 1]
    assert frame["path"].iloc[1] == str(cohort_dir / "sub-01/ses-0/t1.nii.gz")
    assert frame["age"].tolist() == [60, 61, 62, 63]
    assert describe_row(frame, 2) == "manifest.csv line 4 (subject sub-02)"


def test_session_is_optional_and_labels_may_be_numbers(tmp_path):
    manifest = tmp_path / "participants.tsv"
    manifest.write_text("subject_id\tpath\tlabel\n a \t/data/a.nii.gz\t1\nb\tb.nii.gz\t0\n")
    frame = read_manifest(manifest, CLASSES)
    assert frame["subject_id"].tolist() == ["a", "b"]
    assert frame["session"].tolist() == ["", ""]
    assert frame["label"].tolist() == [1, 0]
    assert frame["path"].tolist() == ["/data/a.nii.gz", str(tmp_path / "b.nii.gz")]


def test_blank_required_cell_names_the_line(tmp_path):
    manifest = tmp_path / "m.csv"
    manifest.write_text("subject_id,path,label\na,a.nii.gz,CN\n,b.nii.gz,AD\n")
    with pytest.raises(PifexpError, match="m.csv line 3: empty 'subject_id'"):
        read_manifest(manifest, CLASSES)


def test_bad_mixed_label_policy_is_named(make_cohort):
    with pytest.raises(PifexpError, match="task.mixed_label_subjects='maybe'"):
        read_manifest(make_cohort(), CLASSES, mixed_label_subjects="maybe")
