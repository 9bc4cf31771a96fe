"""A cohort on disk: reuse from the cache keyed by the settings, interrupted runs, refusals, and
identical bytes whatever the number of worker processes."""

from __future__ import annotations

import filecmp
from pathlib import Path

import pytest
from cohort_files import QUIET, TINY_GRID, folder_files, read_manifest, synth_overrides

from pifexp.errors import PifexpError
from pifexp.experiments.specs import synthetic_spec
from pifexp.synthetic import COHORT_FILE, MONTAGE_FILE, ensure_cohort, store


def test_reused_from_the_cache_and_keyed_by_settings(compose_config, tmp_path: Path):
    base = [
        "task=ms", "data.synthetic.n_subjects=4", TINY_GRID,
        f"data.synthetic.cache_dir={tmp_path}", *QUIET,
    ]  # fmt: skip
    manifest = ensure_cohort(synthetic_spec(compose_config("data_synth", base)))[0]
    assert manifest.parent.parent == tmp_path and manifest.is_file()
    written = {p: p.stat().st_mtime_ns for p in manifest.parent.rglob("*")}
    assert ensure_cohort(synthetic_spec(compose_config("data_synth", base)))[0] == manifest
    assert {p: p.stat().st_mtime_ns for p in manifest.parent.rglob("*")} == written
    other = ensure_cohort(
        synthetic_spec(compose_config("data_synth", [*base, "data.synthetic.seed=3"]))
    )[0]
    assert other.parent != manifest.parent
    # settings that do not change the files share the folder
    plot_off = [*base, "data.synthetic.plot=false", "data.synthetic.workers=2"]
    assert synthetic_spec(compose_config("data_synth", plot_off)).target == manifest.parent


def test_says_whether_it_generated_the_cohort(compose_config, tmp_path: Path):
    cfg = compose_config(
        "data_synth",
        ["task=ukb", "data.synthetic.n_subjects=4", TINY_GRID, *synth_overrides(tmp_path / "c")],
    )
    manifest, generated = ensure_cohort(synthetic_spec(cfg))
    assert generated and manifest == tmp_path / "c" / "manifest.csv"
    assert ensure_cohort(synthetic_spec(cfg)) == (manifest, False)


def test_an_interrupted_run_leaves_no_cohort(compose_config, tmp_path: Path, monkeypatch):
    cfg = compose_config(
        "data_synth",
        ["task=adni", "data.synthetic.n_subjects=4", TINY_GRID, *synth_overrides(tmp_path / "c")],
    )

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(store, "effect_map", interrupted)
    with pytest.raises(KeyboardInterrupt):
        ensure_cohort(synthetic_spec(cfg))[0]
    assert list(tmp_path.iterdir()) == []  # neither the cohort nor its hidden working folder
    monkeypatch.undo()
    assert ensure_cohort(synthetic_spec(cfg))[0].is_file()


def test_ensure_rejects_non_content_errors_early(compose_config, tmp_path: Path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    cfg = compose_config("data_synth", ["task=ms", TINY_GRID, *synth_overrides(blocker)])
    with pytest.raises(PifexpError, match="data.synthetic.out_dir"):
        ensure_cohort(synthetic_spec(cfg))[0]


def test_refuses_folders_with_other_things(compose_config, tmp_path: Path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    base = ["task=adni", "data.synthetic.n_subjects=4", TINY_GRID]
    cfg = compose_config("data_synth", [*base, *synth_overrides(mine)])
    with pytest.raises(PifexpError, match="is not empty and holds no finished synthetic cohort"):
        ensure_cohort(synthetic_spec(cfg))
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]
    cohort = tmp_path / "cohort"
    ensure_cohort(synthetic_spec(compose_config("data_synth", [*base, *synth_overrides(cohort)])))
    before = (cohort / COHORT_FILE).read_bytes()
    reseeded = [*base, *synth_overrides(cohort), "data.synthetic.seed=5"]
    with pytest.raises(PifexpError, match="other settings"):
        ensure_cohort(synthetic_spec(compose_config("data_synth", reseeded)))
    assert (cohort / COHORT_FILE).read_bytes() == before


def test_identical_bytes_with_one_or_two_workers(compose_config, tmp_path: Path):
    base = ["task=ms", "data.synthetic.n_subjects=6", TINY_GRID, "data.synthetic.progress=false"]
    folders = []
    for workers in (1, 2):
        folder = tmp_path / f"w{workers}"
        overrides = [*base, f"data.synthetic.out_dir={folder}", f"data.synthetic.workers={workers}"]
        ensure_cohort(synthetic_spec(compose_config("data_synth", overrides)))
        folders.append(folder)
    names = folder_files(folders[0])
    assert names == folder_files(folders[1])
    match, mismatch, errors = filecmp.cmpfiles(*folders, names, shallow=False)
    assert mismatch == [] and errors == [] and len(match) == len(names)
    assert len(read_manifest(folders[0])) == 6


def test_plot_writes_a_montage_with_the_cohort(compose_config, tmp_path: Path):
    pytest.importorskip("matplotlib")
    folder = tmp_path / "plotted"
    overrides = [
        "task=adni", "data.synthetic.n_subjects=4", TINY_GRID, *synth_overrides(folder),
        "data.synthetic.plot=true", "data.synthetic.plot_subjects_per_class=1",
    ]  # fmt: skip
    ensure_cohort(synthetic_spec(compose_config("data_synth", overrides)))
    montage = folder / MONTAGE_FILE
    assert montage.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # readable like the cohort's other files, and nothing hidden left beside it
    assert montage.stat().st_mode & 0o777 == (folder / COHORT_FILE).stat().st_mode & 0o777
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]
