"""Every foreseeable failure ends a command with one line and a non-zero exit, never a
traceback: bad settings, the file system (a path that is a file, no permission, a full disk), an
interrupt, and an unexpected internal error (one line plus the log file with the traceback)."""

from __future__ import annotations

import errno
import os
import re
from pathlib import Path

import pytest

import pifexp.experiments.run as run_module
from pifexp.cli import main


def one_line_error(capsys, *fragments: str) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("pifexp:")]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def train(overrides, *extra):
    return main(["train", "task=adni", "model=pif", *overrides, *extra])


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["train", "trainer.seeds=abc"], "trainer.seeds='abc'"),
        (["train", "trainer.first_seed=-2"], "trainer.first_seed=-2"),
        (["model", "summary", "model.activation=tanh"], "model.activation='tanh'"),
        (["data", "check", "data.manifest=x.csv", "data.workers=0"], "data.workers=0"),
        (["model", "summary", "task=nosuchtask"], "available in 'task': adni, ms, ukb"),
        (["train", "trainer.nosuch=1"], "trainer.nosuch"),
    ],
)
def test_bad_settings_are_one_line(tmp_path, capsys, argv, named):
    assert main([*argv, f"hydra.run.dir={tmp_path / 'run'}"]) == 1
    one_line_error(capsys, named)


def test_a_run_folder_that_is_a_file(tmp_path, capsys, tiny_train_overrides):
    blocker = tmp_path / "file"
    blocker.write_text("mine")
    assert train(tiny_train_overrides, f"hydra.run.dir={blocker}") == 1
    one_line_error(capsys, str(blocker))
    assert blocker.read_text() == "mine"


def test_a_report_into_a_file(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("mine")
    runs = tmp_path / "runs"
    runs.mkdir()
    # a run folder whose seeds have not finished yet: the report itself can be made
    (runs / "config.yaml").write_text(
        "task: {name: adni}\nmodel: {name: pif}\ndata: {subset: 1.0}\n"
        "trainer: {first_seed: 0, seeds: 2}\n"
    )
    assert main(["report", str(runs), f"out_dir={blocker}", "reporting.figures.enabled=false"]) == 1
    one_line_error(capsys, str(blocker))
    assert blocker.read_text() == "mine"


def test_a_full_disk_while_saving_a_checkpoint_names_the_file(
    tmp_path, capsys, tiny_train_overrides, monkeypatch
):
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(run_module.rundir.torch, "save", full)
    assert train(tiny_train_overrides, f"hydra.run.dir={tmp_path / 'run'}") == 1
    one_line_error(capsys, "best.pt", "No space left on device")
    assert not list((tmp_path / "run").glob("seed-*/best.pt"))
    assert not list((tmp_path / "run").glob("seed-*/.best.pt.*"))  # no half-written file


def test_no_permission_names_the_path(tmp_path, capsys, tiny_train_overrides, monkeypatch):
    real = os.replace

    def refuse(source, target):
        if str(target).endswith("config.yaml"):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(target))
        real(source, target)

    monkeypatch.setattr(os, "replace", refuse)
    assert train(tiny_train_overrides, f"hydra.run.dir={tmp_path / 'run'}") == 1
    one_line_error(capsys, "config.yaml", "Permission denied")


def test_an_interrupt_says_how_to_go_on(tmp_path, capsys, tiny_train_overrides, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(run_module, "run_seed", interrupted)
    assert train(tiny_train_overrides, f"hydra.run.dir={tmp_path / 'run'}") == 130
    one_line_error(capsys, "interrupted", "rerun the same command")


def test_an_unexpected_error_leaves_its_traceback_in_a_log(
    tmp_path, capsys, tiny_train_overrides, monkeypatch
):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))

    def broken(*args, **kwargs):
        raise ZeroDivisionError("division by zero in a metric")

    monkeypatch.setattr(run_module, "binary_metrics", broken)
    assert train(tiny_train_overrides, f"hydra.run.dir={tmp_path / 'run'}") == 1
    line = one_line_error(capsys, "unexpected ZeroDivisionError", "division by zero")
    log = re.search(r"the traceback is in (\S+)$", line).group(1)
    assert log.startswith(str(tmp_path / "xdg" / "pifexp" / "logs"))
    text = Path(log).read_text()
    assert "Traceback" in text and "ZeroDivisionError" in text and "pifexp train" in text
