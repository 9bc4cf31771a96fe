"""`pifexp data check`: the report, and one test per rejection (exit code 1, one line naming the
row or file, no traceback)."""

from __future__ import annotations

import gzip

import nibabel as nib
import numpy as np
import pandas as pd
from nifti_cohorts import TINY_SHAPE, tiny_affine, tiny_volume, write_image


def assert_rejected(result: tuple[int, str, str], *fragments: str) -> str:
    code, _, err = result
    assert code == 1, err
    lines = [line for line in err.splitlines() if line.startswith("pifexp: error:")]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def rewrite_manifest(manifest, **cells) -> None:
    """Sets cells given as column=(row, value), or column=None to drop the column."""
    table = pd.read_csv(manifest, dtype=str)
    for column, change in cells.items():
        if change is None:
            table = table.drop(columns=[column])
        else:
            row, value = change
            table.loc[row if row is not None else slice(None), column] = value
    table.to_csv(manifest, index=False)


def image_path(cohort_dir, subject: int, visit: int = 0):
    return cohort_dir / f"sub-{subject:02d}/ses-{visit}/t1.nii.gz"


def test_report_counts_classes_subjects_grids_and_cache(make_cohort, check_cli, tmp_path):
    manifest = make_cohort(n_subjects=6, images_per_subject=2)
    code, out, err = check_cli(manifest)
    assert code == 0, err
    assert "12 images of 6 subjects" in out
    classes = {line.split()[0]: line.split()[1:] for line in out.splitlines()[2:5]}
    assert classes["CN"] == ["0", "6", "3"] and classes["AD"] == ["1", "6", "3"]
    assert "images per subject (images: subjects): 2: 6" in out
    assert "12x14x12      16x16x16         RAS" in out
    cache_line = next(line for line in out.splitlines() if line.startswith("cache:"))
    assert str(tmp_path / "cache") in cache_line and "built now" in cache_line
    code, out, _ = check_cli(manifest)
    assert code == 0 and "built earlier" in out


def test_tsv_manifest_with_numeric_labels_passes(make_cohort, check_cli):
    manifest = make_cohort(name="participants.tsv", classes=("0", "1"))
    code, out, err = check_cli(manifest)
    assert code == 0, err
    assert "8 images of 8 subjects" in out


def test_missing_file_is_rejected(make_cohort, check_cli, cohort_dir):
    manifest = make_cohort()
    image_path(cohort_dir, 3).unlink()
    line = assert_rejected(check_cli(manifest), "manifest.csv line 5", "sub-03", "not found")
    assert str(image_path(cohort_dir, 3)) in line


def test_unreadable_file_is_rejected(make_cohort, check_cli, cohort_dir):
    manifest = make_cohort()
    target = image_path(cohort_dir, 2)
    target.unlink()
    target.mkdir()  # a folder where the image should be: no user can read it as a file
    assert_rejected(check_cli(manifest), "line 4", "sub-02", "cannot be read")


def test_truncated_gzip_is_rejected(make_cohort, check_cli, cohort_dir):
    manifest = make_cohort()
    target = image_path(cohort_dir, 1)
    content = target.read_bytes()
    target.write_bytes(content[: len(content) // 2])
    assert_rejected(check_cli(manifest), "line 3", "sub-01", "corrupt gzip")


def test_gzip_checksum_error_is_rejected(make_cohort, check_cli, cohort_dir):
    manifest = make_cohort()
    target = image_path(cohort_dir, 1)
    raw = gzip.decompress(target.read_bytes())
    packed = bytearray(gzip.compress(raw))
    packed[-8] ^= 0xFF  # the CRC32 in the gzip trailer
    target.write_bytes(bytes(packed))
    assert_rejected(check_cli(manifest), "line 3", "corrupt gzip")


def test_plain_file_named_nii_gz_is_rejected(make_cohort, check_cli, cohort_dir):
    manifest = make_cohort()
    image_path(cohort_dir, 4).write_text("subject 4, see the paper notes\n")
    assert_rejected(check_cli(manifest), "line 6", "sub-04", "gzip")


def test_not_nifti_is_rejected(make_cohort, check_cli, cohort_dir):
    manifest = make_cohort()
    image_path(cohort_dir, 4).write_bytes(gzip.compress(b"not an image at all " * 40))
    assert_rejected(check_cli(manifest), "line 6", "sub-04", "not a NIfTI image")


def test_several_volumes_are_rejected(make_cohort, check_cli, cohort_dir):
    manifest = make_cohort()
    data = np.stack([tiny_volume(1), tiny_volume(2)], axis=-1)
    write_image(image_path(cohort_dir, 0), data, tiny_affine())
    assert_rejected(check_cli(manifest), "line 2", "sub-00", "2 volumes")


def test_single_volume_4d_is_accepted_with_a_warning(make_cohort, check_cli, cohort_dir):
    manifest = make_cohort()
    write_image(image_path(cohort_dir, 0), tiny_volume(1)[..., None], tiny_affine())
    code, _, err = check_cli(manifest)
    assert code == 0, err
    assert "pifexp: warning: 1 image(s) are 4D with a single volume" in err


def test_non_finite_voxels_are_rejected(make_cohort, check_cli, cohort_dir):
    manifest = make_cohort()
    data = tiny_volume(5)
    data[3, 4, 5] = np.nan
    data[1, 1, 1] = np.inf
    write_image(image_path(cohort_dir, 5), data)
    assert_rejected(check_cli(manifest), "line 7", "sub-05", "2 non-finite voxel(s)")


def test_empty_image_is_rejected(make_cohort, check_cli, cohort_dir):
    manifest = make_cohort()
    write_image(image_path(cohort_dir, 6), np.zeros(TINY_SHAPE, np.float32))
    assert_rejected(check_cli(manifest), "line 8", "sub-06", "empty")


def test_other_shape_is_rejected_unless_resampling(make_cohort, check_cli, cohort_dir):
    manifest = make_cohort()
    write_image(image_path(cohort_dir, 2), tiny_volume(2, (12, 14, 13)))
    assert_rejected(check_cli(manifest), "line 4", "sub-02", "shape differs", "resample_to")
    code, _, err = check_cli(manifest, "data.resample_to=cohort")
    assert code == 0, err
    assert "1 image(s) will be resampled" in err


def test_other_affine_is_rejected_unless_resampling(make_cohort, check_cli, cohort_dir):
    manifest = make_cohort()
    affine = tiny_affine()
    affine[:3, 3] += 4.0  # still covers the brain, but a different grid
    write_image(image_path(cohort_dir, 7), tiny_volume(7), affine)
    assert_rejected(check_cli(manifest), "line 9", "sub-07", "affine differs")
    code, out, err = check_cli(manifest, "data.resample_to=mni")
    assert code == 0, err
    assert "preprocessing starts from: 197x233x189 voxels of 1x1x1 mm, RAS" in out


def test_image_outside_mni_space_is_rejected(make_cohort, check_cli, cohort_dir):
    manifest = make_cohort()
    for subject in range(8):  # the whole cohort in scanner space, far from the MNI brain
        affine = tiny_affine()
        affine[:3, 3] = (0.0, 0.0, 0.0)
        write_image(image_path(cohort_dir, subject), tiny_volume(subject), affine)
    assert_rejected(check_cli(manifest), "line 2", "not in MNI space", "8 image(s)")


def test_missing_columns_are_rejected(make_cohort, check_cli):
    manifest = make_cohort()
    rewrite_manifest(manifest, label=None)
    assert_rejected(check_cli(manifest), "manifest.csv", "lacks the column(s) label")


def test_empty_manifest_is_rejected(make_cohort, check_cli):
    manifest = make_cohort()
    manifest.write_text("subject_id,path,label\n")
    assert_rejected(check_cli(manifest), "manifest.csv", "has no rows")
    manifest.write_text("")
    assert_rejected(check_cli(manifest), "manifest.csv", "is empty")


def test_missing_manifest_is_rejected(check_cli, tmp_path):
    assert_rejected(check_cli(tmp_path / "nowhere.csv"), "nowhere.csv", "not found")


def test_manifest_must_be_given(check_cli):
    assert_rejected(check_cli("???"), "data.manifest is required")


def test_label_outside_the_task_is_rejected(make_cohort, check_cli):
    manifest = make_cohort()
    rewrite_manifest(manifest, label=(2, "MCI"))
    assert_rejected(check_cli(manifest), "line 4", "sub-02", "'MCI'", "task.classes")


def test_single_class_is_rejected(make_cohort, check_cli):
    manifest = make_cohort()
    rewrite_manifest(manifest, label=(None, "AD"))
    assert_rejected(check_cli(manifest), "every image is labelled AD")


def test_subject_with_two_labels_is_rejected_unless_asked(make_cohort, check_cli):
    manifest = make_cohort(n_subjects=6, images_per_subject=2)
    rewrite_manifest(manifest, label=(1, "AD"))
    assert_rejected(check_cli(manifest), "subject sub-00 has two labels", "line 2", "line 3")
    code, _, err = check_cli(manifest, "task.mixed_label_subjects=positive")
    assert code == 0, err
    assert "1 subject(s) have images of both classes" in err


def test_same_file_twice_is_rejected(make_cohort, check_cli, cohort_dir):
    manifest = make_cohort()
    # row 5 names row 2's file by its absolute path, row 2 by the relative one
    rewrite_manifest(manifest, path=(5, str(cohort_dir / "sub-02/ses-0/t1.nii.gz")))
    assert_rejected(check_cli(manifest), "lines 4, 7", "same file")


def test_every_bad_row_is_counted(make_cohort, check_cli, cohort_dir):
    manifest = make_cohort()
    for subject in (2, 5):
        write_image(image_path(cohort_dir, subject), np.zeros(TINY_SHAPE, np.float32))
    assert_rejected(check_cli(manifest), "line 4", "(1 more problem(s) in other rows)")


def test_nifti2_images_are_read(make_cohort, check_cli, cohort_dir):
    manifest = make_cohort()
    write_image(image_path(cohort_dir, 3), tiny_volume(3), tiny_affine(), nib.Nifti2Image)
    code, _, err = check_cli(manifest)
    assert code == 0, err
