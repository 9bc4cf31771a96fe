"""Figures from run folders: learning curves with the early-stopping point, ROC curves per cell,
balanced-accuracy distributions of baseline vs PIF, and the PIF patch grid over the MNI template.

Each figure is built from data (a CellRun) into a matplotlib Figure without pyplot's global state;
write_figures is the one place that saves them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
from torch import nn

from pifexp.data.grid import Grid, mni_grid, target_grid
from pifexp.errors import PifexpError
from pifexp.experiments import rundir
from pifexp.experiments.report.runs import CellRun
from pifexp.experiments.report.tables import pairs
from pifexp.files import write_atomic
from pifexp.models import NetworkSpec, build_model, network_spec
from pifexp.synthetic import cohort_grid

DECISION_THRESHOLD = 0.5  # prediction = sigmoid >= 0.5, as in training and testing


def _matplotlib():
    try:
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib.figure import Figure
    except ImportError as error:
        raise PifexpError(
            f"figures need matplotlib ({error}); install it or set reporting.figures.enabled=false"
        ) from None
    return Figure


def _title(run: CellRun) -> str:
    return f"{run.name} ({run.setting_value('model', 'architecture') or run.model})"


def learning_curves_figure(run: CellRun, figures: Mapping[str, Any]):
    """Validation loss per epoch for each seed; a dot where early stopping ended training and a
    ring at the epoch of the lowest validation loss (the state tested under best_val_loss)."""
    Figure = _matplotlib()
    from matplotlib.ticker import MaxNLocator

    width, height = figures["panel_size_inches"]
    figure = Figure(figsize=(width * 1.5, height))
    ax = figure.add_subplot()
    for seed, seed_dir in run.seed_dirs():
        epochs = rundir.read_epochs(seed_dir)
        metrics = run.results.loc[run.results["seed"] == seed].iloc[0]
        (line,) = ax.plot(epochs["epoch"], epochs["val_loss"], label=f"seed {seed}", lw=1)
        for column, style in (("early_stopping_epoch", "o"), ("best_epoch", "o")):
            at = epochs.loc[epochs["epoch"] == int(metrics[column]), "val_loss"]
            if len(at):
                filled = column == "early_stopping_epoch"
                ax.plot(int(metrics[column]), float(at.iloc[0]), style, color=line.get_color(),
                        mfc=line.get_color() if filled else "none", ms=6)  # fmt: skip
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation loss")
    ax.set_title(f"{_title(run)}: • early stop, ○ best epoch", fontsize=9)
    if ax.lines:
        ax.legend(fontsize=7, ncol=2)
    figure.tight_layout()
    return figure


def roc_figure(run: CellRun, figures: Mapping[str, Any]):
    """Test-set ROC curve of each seed (its best checkpoint), with its AUC."""
    from sklearn.metrics import roc_auc_score, roc_curve

    Figure = _matplotlib()
    width, height = figures["panel_size_inches"]
    figure = Figure(figsize=(height * 1.25, height * 1.25))
    ax = figure.add_subplot()
    ax.plot([0, 1], [0, 1], color="0.7", lw=0.8, ls="--")
    for seed, seed_dir in run.seed_dirs():
        predictions = rundir.read_predictions(seed_dir)
        labels = predictions["label"].to_numpy()
        probabilities = predictions["probability"].to_numpy()
        if len(np.unique(labels)) < 2:
            continue
        fpr, tpr, _ = roc_curve(labels, probabilities)
        auc = roc_auc_score(labels, probabilities)
        (line,) = ax.plot(fpr, tpr, lw=1, label=f"seed {seed}: AUC {auc:.2f}")
        if figures["roc_points"]:
            predicted = probabilities >= DECISION_THRESHOLD
            positive = labels == 1
            ax.plot((predicted & ~positive).sum() / max((~positive).sum(), 1),
                    (predicted & positive).sum() / max(positive.sum(), 1), "o",
                    color=line.get_color(), ms=4)  # fmt: skip
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("1 - specificity")
    ax.set_ylabel("sensitivity")
    ax.set_title(f"ROC, {_title(run)}", fontsize=9)
    if len(ax.lines) > 1:
        ax.legend(fontsize=6, loc="lower right")
    figure.tight_layout()
    return figure


def balanced_accuracy_figure(
    baseline: CellRun, pif: CellRun, figures: Mapping[str, Any], labels: Mapping[str, Any]
):
    """Balanced accuracy per seed of baseline and PIF (one task and setting): box plots, the
    seeds as points, and a line joining the two arms' runs of the same seed (same split)."""
    Figure = _matplotlib()
    width, height = figures["panel_size_inches"]
    figure = Figure(figsize=(width, height))
    ax = figure.add_subplot()
    arms = [baseline, pif]
    values = [100 * run.results["balanced_accuracy"].to_numpy(dtype=float) for run in arms]
    ax.boxplot(values, widths=0.5, showfliers=False)
    ax.set_xticks([1, 2], [str(labels["model"].get(run.model, run.model)) for run in arms])
    merged = baseline.results[["seed", "balanced_accuracy"]].merge(
        pif.results[["seed", "balanced_accuracy"]], on="seed", suffixes=("_b", "_p")
    )
    for _, row in merged.iterrows():
        ax.plot([1, 2], [100 * row["balanced_accuracy_b"], 100 * row["balanced_accuracy_p"]],
                color="0.6", lw=0.7)  # fmt: skip
    for position, arm_values in enumerate(values, start=1):
        ax.plot(np.full(len(arm_values), position), arm_values, "o", ms=4, alpha=0.8)
    task = labels["task"].get(pif.task, pif.task)
    setting = labels["setting"].get(pif.setting, pif.setting)
    ax.set_ylabel("balanced accuracy (%)")
    ax.set_title(f"{task}, {setting}: {len(merged)} paired seeds", fontsize=9)
    figure.tight_layout()
    return figure


# ----------------------------------------------------------------------------- PIF patch grid


def pif_patch_labels(model: nn.Sequential, input_shape: Sequence[int]) -> np.ndarray:
    """For each input voxel, 1 + the number of the PIF patch whose features it feeds (patches
    numbered row-major over D, H, W as in the layer), 0 where no feature of the grid lies.

    A feature voxel sits at a fixed place of the input: each convolution or pooling before the
    PIF layer moves its centre by ((kernel - 1) / 2 - padding) input steps and multiplies the
    step by its stride. A patch covers the input between its first and last feature's halfway
    points to their neighbours.
    """
    modules = dict(model.named_children())
    if "pif" not in modules:
        raise PifexpError("the model has no PIF layer, so it has no patch grid")
    start = np.zeros(3)
    step = np.ones(3)
    for name, module in model.named_children():
        if name == "pif":
            break
        if isinstance(module, nn.Conv3d | nn.MaxPool3d | nn.AvgPool3d):
            kernel, stride, padding = (
                np.broadcast_to(np.asarray(getattr(module, key), dtype=float), 3)
                for key in ("kernel_size", "stride", "padding")
            )
            start = start + ((kernel - 1) / 2 - padding) * step
            step = step * stride
    layer = modules["pif"]
    features = np.asarray(layer.input_shape)
    patch = np.asarray(layer.patch_size)
    grid = np.asarray(layer.grid)
    index_per_axis = []
    for axis in range(3):
        voxels = np.arange(int(input_shape[axis]))
        feature = np.floor((voxels - start[axis]) / step[axis] + 0.5).astype(int)
        inside = (feature >= 0) & (feature < features[axis])
        index_per_axis.append(np.where(inside, feature // patch[axis], -1))
    d, h, w = np.meshgrid(*index_per_axis, indexing="ij")
    labels = 1 + (d * grid[1] + h) * grid[2] + w
    return np.where((d >= 0) & (h >= 0) & (w >= 0), labels, 0).astype(np.int32)


def input_grid(run: CellRun) -> Grid:
    """The voxel grid (affine in MNI mm) of a run's input volumes, as recorded at training time.
    Runs of earlier versions did not record it: the synthetic cohort's grid, or for a cohort of
    one's own the task's shape over nilearn's MNI152 box."""
    recorded = rundir.read_input_grid(run.run_dir)
    if recorded is not None:
        return recorded
    config = run.config
    shape = [int(n) for n in config["task"]["input_shape"]]
    data = config["data"]
    if data.get("source") == "synthetic":
        grid_cfg = data["synthetic"]["grid"]
        return cohort_grid(shape, grid_cfg["field_of_view_mm"], grid_cfg["center_mm"])
    crop = config["task"]["preprocess"]["crop"]
    return target_grid(mni_grid(int(data["mni_resolution"])), shape, crop)


def run_network(run: CellRun) -> NetworkSpec:
    """The run's network: network.json beside a checkpoint, or for runs of earlier versions the
    model in its config."""
    for _, folder in run.seed_dirs():
        if (folder / rundir.NETWORK_FILE).is_file():
            return rundir.read_network_spec(folder)
    return network_spec(run.config["model"], run.config["task"]["input_shape"])


def patch_grid_figure(run: CellRun, figures: Mapping[str, Any], task_label: str):
    """The PIF layer's patches, each in its own colour, over nilearn's MNI152 template resampled
    to the task's grid (the resolution the network sees)."""
    Figure = _matplotlib()
    from nilearn import plotting
    from nilearn.datasets import load_mni152_template
    from nilearn.image import resample_img

    spec = run_network(run)
    model = build_model(spec)
    labels = pif_patch_labels(model, spec.input_shape)
    grid = input_grid(run)
    settings = figures["patch_grid"]
    template = resample_img(
        load_mni152_template(resolution=int(settings["template_resolution"])),
        target_affine=grid.affine,
        target_shape=grid.shape,
        interpolation="continuous",
    )
    layer = dict(model.named_children())["pif"]
    counts = "x".join(map(str, layer.grid))
    patch = "x".join(map(str, layer.patch_size))
    voxels = "x".join(map(str, grid.shape))
    sizes = [f"{size:.3g}" for size in grid.voxel_size]
    voxel_mm = sizes[0] if len(set(sizes)) == 1 else "x".join(sizes)
    width, height = figures["panel_size_inches"]
    figure = Figure(figsize=(width * 3, height))
    plotting.plot_roi(
        nib.Nifti1Image(labels, grid.affine),
        bg_img=template,
        figure=figure,
        display_mode=settings["display_mode"],
        cut_coords=list(settings["cut_coords"]),
        alpha=float(settings["alpha"]),
        cmap=settings["colormap"],
        colorbar=False,
        draw_cross=False,
        title=(
            f"{task_label}, {spec.architecture}: {counts} patches of "
            f"{patch} features; {voxels} voxels of {voxel_mm} mm"
        ),
    )
    return figure


# ----------------------------------------------------------------------------- writing


def _save(figure, path: Path, figures: Mapping[str, Any]) -> Path:
    # no software version or date in the file: the same runs give the same bytes
    metadata = {"Software": None} if figures["format"] == "png" else None
    return write_atomic(
        path,
        lambda tmp: figure.savefig(
            tmp, format=figures["format"], dpi=int(figures["dpi"]), metadata=metadata
        ),
    )


def write_figures(
    runs: Sequence[CellRun], folder: Path, reporting: Mapping[str, Any]
) -> list[Path]:
    """Every figure for these runs, into `folder`; returns the files written."""
    figures = reporting["figures"]
    labels = reporting["labels"]
    suffix = f".{figures['format']}"
    written = []
    for run in runs:
        if run.results.empty:
            continue  # a failed or unstarted cell has nothing to draw
        written.append(_save(learning_curves_figure(run, figures),
                             folder / f"learning-curves-{run.name}{suffix}", figures))  # fmt: skip
        written.append(_save(roc_figure(run, figures), folder / f"roc-{run.name}{suffix}", figures))
    for (task, setting), arms in sorted(pairs(runs).items()):
        if not any(arm.results.empty for arm in arms.values()):
            figure = balanced_accuracy_figure(arms["baseline"], arms["pif"], figures, labels)
            written.append(
                _save(figure, folder / f"balanced-accuracy-{task}-{setting}{suffix}", figures)
            )
    drawn_tasks = set()
    for run in runs:
        if run.model != "pif" or run.task in drawn_tasks or not _has_model_config(run):
            continue
        drawn_tasks.add(run.task)
        figure = patch_grid_figure(run, figures, str(labels["task"].get(run.task, run.task)))
        written.append(_save(figure, folder / f"pif-patch-grid-{run.task}{suffix}", figures))
    return written


def _has_model_config(run: CellRun) -> bool:
    """A PIF network and an input shape that a model can be built from."""
    model = run.setting_value("model")
    shape = run.setting_value("task", "input_shape")
    return (
        isinstance(model, Mapping)
        and bool(model.get("pif"))
        and isinstance(shape, Sequence)
        and all(isinstance(n, int) for n in shape)
    )
