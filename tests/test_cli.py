from pifexp.cli import main


def test_help_lists_the_commands(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("model summary", "data check", "data synth"):
        assert command in out


def test_unknown_command_is_one_line_and_exit_2(capsys):
    assert main(["fly"]) == 2
    assert "unknown command 'fly'" in capsys.readouterr().err


def test_model_summary_prints_layers_and_total(capsys):
    assert main(["model", "summary", "task=adni", "model=pif"]) == 0
    out = capsys.readouterr().out
    assert "PatchIndividualFilters3d" in out
    assert "3x12x3x3x3" in out
    assert "total parameters: 493,989" in out


def test_model_summary_bad_override_fails(capsys):
    assert main(["model", "summary", "task=nosuchtask"]) != 0
    assert "nosuchtask" in capsys.readouterr().err


def test_model_summary_bad_setting_is_one_line(capsys):
    assert main(["model", "summary", "task=ukb", "model=baseline", "task.input_shape=[9,9,9]"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("pifexp: error: ") and "model.features" in err
    assert "Traceback" not in err


def test_bare_arguments_become_the_commands_list_setting():
    from pifexp.cli import COMMANDS, positional_to_override

    report = next(c for c in COMMANDS if c.words == ("report",))
    assert positional_to_override(report, ["runs/a", "it's", "out_dir=x"]) == [
        "out_dir=x",
        "dirs=['runs/a','it\\'s']",
    ]
    train = next(c for c in COMMANDS if c.words == ("train",))
    assert positional_to_override(train, ["stray"]) == ["stray"]


def test_version(capsys):
    import pifexp

    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"pifexp {pifexp.__version__}"


def test_a_commands_help_lists_its_settings_fast(capsys):
    import time

    started = time.process_time()
    assert main(["train", "profile=quick", "--help"]) == 0
    spent = time.process_time() - started
    out = capsys.readouterr().out
    assert out.startswith("pifexp train: train and test")
    # main settings with the values this command line gives them (the quick profile's)
    assert "trainer.max_epochs    = 100" in out and "profile.name          = quick" in out
    assert "task           = adni  [adni | ms | ukb]" in out
    assert "pifexp train --hydra-help" in out and "examples:" in out
    assert spent < 1.0, spent  # the command's own CPU time, not Hydra's 390-line dump


def test_help_with_a_bad_override_is_one_line(capsys):
    assert main(["model", "summary", "task=nosuchtask", "--help"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("pifexp: error: ") and "nosuchtask" in err and "Traceback" not in err


def test_help_of_commands_that_take_folders_shows_them(capsys):
    assert main(["interpret", "--help"]) == 0
    out = capsys.readouterr().out
    assert "usage: pifexp interpret DIR... [group=option" in out
    assert "method" in out and "pifexp interpret results/table1-quick" in out
    assert main(["predict", "--help"]) == 0
    out = capsys.readouterr().out
    assert "usage: pifexp predict RUN_DIR [group=option" in out and "data.manifest" in out


def test_help_read_by_a_reader_that_stops_early_is_no_error():
    import subprocess
    import sys

    # `pifexp train --help | head -0`: the reader is gone before the help is written
    reader = subprocess.Popen([sys.executable, "-c", "pass"], stdin=subprocess.PIPE)
    reader.wait()
    help_ = subprocess.run(
        [sys.executable, "-m", "pifexp.cli", "train", "--help"],
        stdout=reader.stdin, stderr=subprocess.PIPE, text=True, check=False,
    )
    reader.stdin.close()
    assert help_.returncode == 0 and "Traceback" not in help_.stderr, help_.stderr
