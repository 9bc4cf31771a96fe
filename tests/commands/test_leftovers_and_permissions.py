"""Interrupted work is reported, and new files respect the umask (a group-shared results or
cache folder stays readable by the group)."""

from __future__ import annotations

import os
import stat

import pytest

from pifexp.cli import main

TINY = ["task=ms", "task.input_shape=[24,28,24]", "data.synthetic.n_subjects=4",
        "data.synthetic.progress=false", "data.synthetic.workers=1"]  # fmt: skip


def test_an_interrupted_synthesis_is_reported(tmp_path, capsys):
    leftover = tmp_path / ".ms-24x28x24-n4-abc.partial-x1y2"
    leftover.mkdir()
    assert main(["data", "synth", *TINY, f"data.synthetic.cache_dir={tmp_path}"]) == 0
    err = capsys.readouterr().err
    assert "1 unfinished synthesis folder(s)" in err and leftover.name in err
    assert leftover.is_dir()  # reported, not removed: it might be a synthesis running now


@pytest.fixture
def group_umask():
    previous = os.umask(0o002)
    yield
    os.umask(previous)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_new_files_and_folders_follow_the_umask(tmp_path, group_umask, tiny_train_overrides):
    run_dir = tmp_path / "run"
    argv = ["train", "task=adni", "model=baseline", *tiny_train_overrides, "trainer.seeds=1",
            f"hydra.run.dir={run_dir}"]  # fmt: skip
    assert main(argv) == 0
    for written in ("config.yaml", "results.csv", "input.json", "seed-0/metrics.json",
                    "seed-0/best.pt"):  # fmt: skip
        assert mode(run_dir / written) == 0o664, written
    (cache,) = (tmp_path / "cache").glob("*x32x38x32-*")
    assert mode(cache) == 0o775
    assert mode(cache / "volumes.npy") & 0o040  # the group may read the volumes
    cohort = tmp_path / "cohort"
    assert mode(cohort) == 0o775 and mode(cohort / "manifest.csv") & 0o040
