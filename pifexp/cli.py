"""`pifexp <command> [overrides]`: a small dispatcher in front of one Hydra app per command.

Hydra has no subcommands; the first words pick the command and its primary config
(`configs/<config>.yaml`), the rest goes to Hydra unchanged, so overrides, `--help`, `-m` multirun
and launchers behave as every Hydra user expects.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import hydra
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from pifexp.commands.failures import failure_message
from pifexp.commands.help import command_help, version_line
from pifexp.commands.overrides import first_of_each_sweep
from pifexp.config_dir import config_dir, group_options
from pifexp.errors import PifexpError

HYDRA_FULL_ERROR = "HYDRA_FULL_ERROR"


@dataclass(frozen=True)
class Command:
    words: tuple[str, ...]
    config_name: str
    target: str  # "module:function", imported only when the command runs
    help: str
    # the config key that takes the command's bare (not key=value) arguments as a list
    positional: str | None = None
    settings: tuple[str, ...] = ()  # the main settings, shown by `pifexp <command> --help`
    examples: tuple[str, ...] = ()
    # the config group that the command's one bare argument chooses (`pifexp study samples` ->
    # study=samples), and the choice its --help shows when none is given
    choice_group: str | None = None
    help_choice: str | None = None
    multirun: bool = False  # its config is a multirun (hydra.mode): composed first, one job's way


COMMANDS = (
    Command(
        ("train",),
        "train",
        "pifexp.commands.train:train_command",
        "train and test a task x model cell over seeds (balanced accuracy, early stopping)",
        settings=("task.name", "model.name", "setting.name", "data.subset", "protocol.name",
                  "profile.name", "trainer.seeds", "trainer.max_epochs", "trainer.lr",
                  "trainer.batch_size", "trainer.patience", "trainer.ignore_before",
                  "trainer.device", "data.cache_dir"),  # fmt: skip
        examples=("pifexp train task=adni model=pif profile=quick",
                  "pifexp train -m task=adni model=baseline,pif trainer.lr=1e-4,5e-5"),  # fmt: skip
    ),
    Command(
        ("table1",),
        "table1",
        "pifexp.commands.table1:cell_command",
        "run every cell of Table 1 (a Hydra multirun) and write its tables and figures",
        multirun=True,
        settings=("out_dir", "protocol.name", "profile.name", "trainer.seeds", "data.cache_dir",
                  "reporting.statistics.primary_metric"),  # fmt: skip
        examples=("pifexp table1 profile=quick out_dir=results/table1-quick",
                  "pifexp table1 out_dir=results/t1 experiment=adni-baseline-full,adni-pif-full"),
    ),
    Command(
        ("study",),
        "study",
        "pifexp.commands.study:cell_command",
        "test the paper's mechanism: a study's grid of cells (a Hydra multirun), its table and "
        "figures",
        settings=("study.name", "study.factor", "out_dir", "task.name", "profile.name",
                  "trainer.seeds", "data.cache_dir", "reporting.statistics.adjustment"),
        examples=("pifexp study registration profile=quick out_dir=results/registration",
                  "pifexp study samples profile=quick out_dir=results/samples trainer.seeds=5",
                  "pifexp study ablation profile=quick out_dir=results/ablation "
                  "arm=baseline,pif,pif-one-patch"),
        choice_group="study",
        help_choice="registration",
        multirun=True,
    ),
    Command(
        ("report",),
        "report",
        "pifexp.commands.report:report_command",
        "rebuild Table 1's tables and figures from run folders (pifexp report DIR...), no training",
        positional="dirs",
        settings=("out_dir", "seeds", "reporting.statistics.adjustment",
                  "reporting.figures.format", "reporting.figures.dpi"),  # fmt: skip
        examples=("pifexp report results/table1-quick",
                  "pifexp report runs/a runs/b out_dir=results/ab"),  # fmt: skip
    ),
    Command(
        ("interpret",),
        "interpret",
        "pifexp.commands.interpret:interpret_command",
        "attribution maps of finished runs (captum), scored and checked against random weights",
        positional="dirs",
        settings=("out_dir", "method", "data.manifest", "images", "subjects_per_class", "seeds",
                  "ig.steps", "occlusion.window", "occlusion.stride", "mni152",
                  "figures.enabled"),  # fmt: skip
        examples=("pifexp interpret results/table1-quick",
                  "pifexp interpret RUN_A RUN_B method=[ig,lrp] out_dir=results/maps"),
    ),
    Command(
        ("predict",),
        "predict",
        "pifexp.commands.predict:predict_command",
        "apply a finished run to the images of a manifest (labels optional)",
        positional="run_dir",
        settings=("data.manifest", "out", "batch_size", "data.cache_dir"),
        examples=("pifexp predict RUN_DIR data.manifest=new.csv",
                  "pifexp predict RUN_DIR data.manifest=new.tsv out=new-predictions.csv"),
    ),
    Command(
        ("data", "check"),
        "data_check",
        "pifexp.commands.data_check:check_command",
        "read and validate a cohort (manifest + NIfTI files), report it and build its cache",
        settings=("data.manifest", "task.name", "task.input_shape", "data.resample_to",
                  "data.cache_dir", "build_cache"),  # fmt: skip
        examples=("pifexp data check task=adni data.manifest=/data/adni/manifest.csv",
                  "pifexp data check task=ms data.manifest=ms.tsv data.resample_to=mni"),
    ),
    Command(
        ("data", "synth"),
        "data_synth",
        "pifexp.commands.data_synth:synth_command",
        "write a synthetic MNI-space cohort (NIfTI files, manifest, effect map)",
        settings=("task.name", "data.synthetic.n_subjects", "data.synthetic.seed",
                  "data.synthetic.out_dir", "data.synthetic.misregistration.sd_mm",
                  "data.synthetic.plot"),  # fmt: skip
        examples=("pifexp data synth task=adni profile=quick data.synthetic.out_dir=cohort",
                  "pifexp data synth task=ms data.synthetic.plot=true"),  # fmt: skip
    ),
    Command(
        ("model", "summary"),
        "model_summary",
        "pifexp.commands.model_summary:summary_command",
        "print a network's layers, output shapes and parameter counts",
        settings=("task.name", "model.name", "task.input_shape", "model.architecture"),
        examples=("pifexp model summary task=adni model=pif",
                  "pifexp model summary task=ukb model=baseline profile=quick"),  # fmt: skip
    ),
)


def usage() -> str:
    width = max(len(" ".join(c.words)) for c in COMMANDS)
    lines = [
        "usage: pifexp <command> [key=value overrides] [--help] [-m]",
        "",
        "commands:",
        *(f"  {' '.join(c.words):<{width}}  {c.help}" for c in COMMANDS),
        "",
        "`pifexp <command> --help`: the command's main settings, groups and examples;",
        "`pifexp --version`: the version.",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _dispatch(list(sys.argv[1:] if argv is None else argv))
    except BrokenPipeError:  # the reader went away (`pifexp train --help | head`): not an error
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so that Python's own flush at exit stays quiet
        return 0


def _dispatch(args: list[str]) -> int:
    if not args or args[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    if args[0] in ("-V", "--version"):
        print(version_line())
        return 0
    command = next((c for c in COMMANDS if tuple(args[: len(c.words)]) == c.words), None)
    if command is None:
        print(
            f"pifexp: error: unknown command {' '.join(args[:2])!r}\n\n{usage()}", file=sys.stderr
        )
        return 2
    rest = args[len(command.words) :]
    if "--help" in rest or "-h" in rest:
        return show_help(command, [a for a in rest if a not in ("--help", "-h")])
    return run_command(command, rest)


def show_help(command: Command, overrides: list[str]) -> int:
    """The command's short help (Hydra's own stays at --hydra-help)."""
    try:
        group = command.choice_group
        if group is not None and not any("=" not in o or o.startswith(f"{group}=")
                                         for o in overrides):  # fmt: skip
            overrides = [*overrides, f"{group}={command.help_choice}"]
        overrides = positional_to_override(command, overrides)
        if command.multirun:  # the settings of one job
            overrides = first_of_each_sweep(overrides)
        text = command_help(
            command.words, command.help, command.config_name, command.settings,
            command.examples, overrides, command.positional or group,
        )  # fmt: skip
    except Exception as error:  # an override that does not compose: say so in one line
        message, code = failure_message(error, " ".join(command.words))
        print(message, file=sys.stderr)
        return code
    print(text)
    return 0


def positional_to_override(command: Command, args: list[str]) -> list[str]:
    """`pifexp report A B` -> `pifexp report dirs=[A,B]`, `pifexp study samples` -> `pifexp
    study study=samples`: Hydra itself takes only key=value."""
    bare = [a for a in args if "=" not in a and not a.startswith("-")]
    if command.choice_group is not None:
        if len(bare) > 1:
            raise PifexpError(
                f"pifexp {' '.join(command.words)} takes one {command.choice_group} name, got "
                f"{', '.join(bare)}"
            )
        rest = [a for a in args if a not in bare]
        if bare:
            return [*rest, f"{command.choice_group}={bare[0]}"]
        if not any(a.startswith(f"{command.choice_group}=") for a in rest):
            options = group_options(command.choice_group)
            raise PifexpError(
                f"name the {command.choice_group}: pifexp {' '.join(command.words)} "
                f"<{'|'.join(options)}> [key=value ...]"
            )
        return rest
    if command.positional is None:
        return args
    if not bare:
        return args
    quoted = ",".join(_quote(value) for value in bare)
    return [*(a for a in args if a not in bare), f"{command.positional}=[{quoted}]"]


def _quote(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace("'", "\\'")
    return f"'{escaped}'"


def run_command(command: Command, overrides: list[str]) -> int:
    try:
        overrides = positional_to_override(command, overrides)
    except PifexpError as error:
        print(f"pifexp: error: {error}", file=sys.stderr)
        return 2
    if command.multirun:
        problem = composition_problem(command, overrides)
        if problem is not None:
            print(problem, file=sys.stderr)
            return 1
    module_name, function_name = command.target.split(":")
    function: Callable[[DictConfig], object] = getattr(
        importlib.import_module(module_name), function_name
    )

    name = " ".join(command.words)

    def task(cfg: DictConfig) -> None:
        try:
            function(cfg)
        except (Exception, KeyboardInterrupt) as error:
            fail(error, name)

    app = hydra.main(
        config_path=str(config_dir()), config_name=command.config_name, version_base="1.3"
    )(task)
    saved_argv, saved_full_error = sys.argv, os.environ.get(HYDRA_FULL_ERROR)
    sys.argv = [f"pifexp {name}", *overrides]
    # Hydra's own errors (a config it cannot compose, a run folder it cannot make) come here
    # instead of being printed by Hydra with a traceback
    os.environ[HYDRA_FULL_ERROR] = "1"
    try:
        app()
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else 1
    except (Exception, KeyboardInterrupt) as error:
        message, code = failure_message(error, name)
        print(message, file=sys.stderr)
        return code
    finally:
        sys.argv = saved_argv
        if saved_full_error is None:
            os.environ.pop(HYDRA_FULL_ERROR, None)
        else:
            os.environ[HYDRA_FULL_ERROR] = saved_full_error
    return 0


def composition_problem(command: Command, overrides: list[str]) -> str | None:
    """Why the config of one job of a multirun command does not compose (its one-line message),
    or None. Hydra itself would only say that the command line's sweeps are ambiguous."""
    try:
        with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
            compose(command.config_name, overrides=first_of_each_sweep(overrides))
    except Exception as error:
        return failure_message(error, " ".join(command.words))[0]
    return None


def fail(error: BaseException, command: str) -> None:
    """Say in one line why the command failed, and exit with its code."""
    message, code = failure_message(error, command)
    print(message, file=sys.stderr)
    sys.exit(code)


if __name__ == "__main__":
    sys.exit(main())
