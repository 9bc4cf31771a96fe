"""The PIF layer's patch grid over the MNI152 template: which input voxels feed which patch."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import nibabel as nib
import numpy as np
from torch import nn

from pifexp.data.grid import Grid, mni_grid, target_grid
from pifexp.errors import PifexpError
from pifexp.experiments import rundir
from pifexp.experiments.report.runs import CellRun
from pifexp.experiments.report.style import new_figure
from pifexp.models import NetworkSpec, build_model, network_spec
from pifexp.synthetic import cohort_grid


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
    figure = new_figure(figures, width=3)
    plotting.plot_roi(
        nib.Nifti1Image(labels, grid.affine),
        bg_img=template,
        figure=figure,
        display_mode=settings["display_mode"],
        cut_coords=list(settings["cut_coords"]),
        alpha=float(settings["alpha"]),
        cmap=_patch_colours(settings["colormap"], layer.num_patches),
        vmin=0.5,
        vmax=layer.num_patches + 0.5,
        cbar_tick_format="%d",
        colorbar=True,  # the patch numbers (row-major over D, H, W, as in the layer)
        draw_cross=False,
        title=(
            f"{task_label}, {spec.architecture}: {counts} patches of "
            f"{patch} features; {voxels} voxels of {voxel_mm} mm"
        ),
    )
    return figure


def has_pif_network(run: CellRun) -> bool:
    """A PIF network and an input shape that a model can be built from."""
    model = run.setting_value("model")
    shape = run.setting_value("task", "input_shape")
    return (
        isinstance(model, Mapping)
        and bool(model.get("pif"))
        and isinstance(shape, Sequence)
        and all(isinstance(n, int) for n in shape)
    )


def _patch_colours(name: str, patches: int) -> Any:
    """One colour per patch, so that the colour bar reads as the patches' numbers."""
    from matplotlib import colormaps
    from matplotlib.colors import ListedColormap

    colours = colormaps[name].resampled(patches)
    return ListedColormap([colours(i) for i in range(patches)], name=f"{name}-{patches}")
