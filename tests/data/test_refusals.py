"""Images and manifests that would be read wrongly without a word are refused by `pifexp data
check` (and so by every command that reads a cohort): one line naming the row or file, exit 1,
no traceback."""

from __future__ import annotations

import os

import nibabel as nib
import numpy as np
import pandas as pd
from nifti_cohorts import tiny_affine, tiny_volume
from test_check import assert_rejected, image_path


def rewrite_image(path, data=None, **header) -> None:
    """Rewrites a cohort image with other voxels or header codes."""
    image = nib.load(path)
    data = np.asarray(image.dataobj) if data is None else data
    new = nib.Nifti1Image(data, image.affine)
    for key, (affine, code) in header.items():
        getattr(new, f"set_{key}")(affine, code=code)
    nib.save(new, path)


def test_complex_voxels_are_refused(make_cohort, cohort_dir, check_cli):
    manifest = make_cohort()
    rewrite_image(image_path(cohort_dir, 2), tiny_volume(2).astype(np.complex64) * (1 + 1j))
    assert_rejected(check_cli(manifest), "line 4", "complex voxels", "magnitude")


def test_rgb_images_are_refused(make_cohort, cohort_dir, check_cli):
    manifest = make_cohort()
    rgb = np.zeros(tiny_volume(0).shape, dtype=[("R", "u1"), ("G", "u1"), ("B", "u1")])
    rgb["R"] = 7
    rewrite_image(image_path(cohort_dir, 1), rgb)
    assert_rejected(check_cli(manifest), "line 3", "RGB or multi-channel")


def test_qform_and_sform_that_disagree_are_refused(make_cohort, cohort_dir, check_cli):
    manifest = make_cohort()
    path = image_path(cohort_dir, 3)
    affine = nib.load(path).affine
    moved = affine.copy()
    moved[:3, 3] += [30.0, 0.0, 0.0]  # 30 mm to the right
    rewrite_image(path, sform=(affine, "mni"), qform=(moved, "scanner"))
    line = assert_rejected(check_cli(manifest), "line 5", "qform", "sform", "30.0 mm apart")
    assert str(path) in line


def test_an_image_without_orientation_is_refused(make_cohort, cohort_dir, check_cli):
    manifest = make_cohort()
    path = image_path(cohort_dir, 0)
    image = nib.load(path)
    image.set_sform(None, code=0)
    image.set_qform(None, code=0)
    nib.save(image, path)
    assert_rejected(check_cli(manifest), "line 2", "no orientation", "qform_code")


def test_one_file_under_two_subjects_through_a_hard_link_is_refused(
    make_cohort, cohort_dir, check_cli
):
    manifest = make_cohort()
    linked = cohort_dir / "sub-99.nii.gz"
    os.link(image_path(cohort_dir, 0), linked)
    table = pd.read_csv(manifest, dtype=str)
    extra = table.iloc[[0]].assign(subject_id="sub-99", path="sub-99.nii.gz")
    pd.concat([table, extra]).to_csv(manifest, index=False)
    assert_rejected(check_cli(manifest), "lines 2, 10", "hard link")


def test_two_label_columns_are_refused(make_cohort, check_cli):
    manifest = make_cohort()
    text = manifest.read_text().splitlines()
    # a second column named label, and one that becomes label once its spaces are stripped
    for header in ("label", " label "):
        lines = [f"{text[0]},{header}"] + [f"{line},CN" for line in text[1:]]
        manifest.write_text("\n".join(lines) + "\n")
        assert_rejected(check_cli(manifest), "columns 4, 6", "'label'", "keep one")


def test_a_symlink_loop_names_the_row(make_cohort, cohort_dir, check_cli):
    manifest = make_cohort()
    loop = cohort_dir / "loop.nii.gz"
    loop.symlink_to(loop)
    table = pd.read_csv(manifest, dtype=str)
    table.loc[3, "path"] = "loop.nii.gz"
    table.to_csv(manifest, index=False)
    code, _, err = check_cli(manifest)
    assert code == 1 and "Traceback" not in err
    assert "line 5" in err and "loop.nii.gz" in err


def test_subjects_named_na_or_none_are_subjects(make_cohort, check_cli, tmp_path):
    manifest = make_cohort()
    table = pd.read_csv(manifest, dtype=str)
    table.loc[0, "subject_id"], table.loc[1, "subject_id"] = "NA", "None"
    table.to_csv(manifest, index=False)
    code, out, err = check_cli(manifest)
    assert code == 0, err
    assert "8 images of 8 subjects" in out


def test_bids_column_names_are_accepted(make_cohort, check_cli):
    manifest = make_cohort(name="participants.tsv")
    table = pd.read_csv(manifest, sep="\t", dtype=str)
    table = table.rename(
        columns={"subject_id": "participant_id", "session": "session_id", "label": "diagnosis"}
    )
    table.to_csv(manifest, sep="\t", index=False)
    code, out, err = check_cli(manifest)
    assert code == 0, err
    assert "8 images of 8 subjects" in out
    # both names of one column: which one is meant cannot be known
    table["subject_id"] = table["participant_id"]
    table.to_csv(manifest, sep="\t", index=False)
    assert_rejected(check_cli(manifest), "'participant_id'", "'subject_id'", "keep one")


def test_images_that_pass_are_unchanged(make_cohort, cohort_dir, check_cli):
    # the same cohort written with qform and sform equal passes
    manifest = make_cohort()
    path = image_path(cohort_dir, 4)
    affine = tiny_affine(tiny_volume(4).shape)
    rewrite_image(path, sform=(affine, "mni"), qform=(affine, "mni"))
    code, _, err = check_cli(manifest)
    assert code == 0, err
