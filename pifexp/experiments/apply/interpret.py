"""`pifexp interpret`: attribution maps of finished runs (captum), written as NIfTI in the cohort's
MNI space, scored against the cohort's effect map where it has one, and checked against the same
network with re-initialised weights (model randomisation, Adebayo et al. 2018).

OUT/ (default: interpretation/ in the first folder given)
  interpretation.csv, interpretation.md   one row per run, seed, method and weights; the summary
  images.csv                              one row per image map: its scores
  figures/<method>.png                    the arms' mean maps side by side (interpret_figures)
  maps/<cell>/run.json                    which run's maps these are (never another run's)
  maps/<cell>/<method>/settings.json      the settings the maps were made with
  maps/<cell>/<method>/seed-<k>/{trained,random}/<subject>[_<session>].nii.gz, mean_*.nii.gz
  maps/<cell>/<method>/seed-<k>/scores.csv   written last: the seed's maps are done
  maps/<cell>/<method>/{trained,random}/mean_[abs_]<group>[_mni152].nii.gz   over every seed
A rerun skips the seeds whose scores.csv exists and writes the same tables again.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from pifexp.data.cache import CachedCohort
from pifexp.data.manifest import LABEL, SESSION, SUBJECT
from pifexp.errors import ConfigError, PifexpError
from pifexp.experiments import rundir
from pifexp.experiments.apply.attribution import (
    AttributionSpec,
    attribute,
    check_lrp,
    random_network,
)
from pifexp.experiments.apply.figures import FigureRow, method_figure
from pifexp.experiments.apply.finished import FinishedRun, open_finished_run
from pifexp.experiments.apply.images import safe_name, seed_images, volume_batches
from pifexp.experiments.apply.means import RANDOM, TRAINED, arm_means, group_means, mean_path
from pifexp.experiments.apply.new_images import ImagesSpec
from pifexp.experiments.apply.scores import (
    brain_mask,
    grid_image,
    normalized,
    rank_agreement,
    signal_mask,
    signal_scores,
    write_nifti,
)
from pifexp.experiments.apply.summary import ScoredRun, seed_table, summary_markdown
from pifexp.experiments.report.runs import find_run_dirs
from pifexp.files import write_atomic, write_json_atomic, write_text_atomic
from pifexp.synthetic import EFFECT_MAP_FILE

MAPS_DIR, RUN_FILE, SETTINGS_FILE, SCORES_FILE = "maps", "run.json", "settings.json", "scores.csv"
TABLE_FILE, IMAGES_FILE, SUMMARY_FILE = "interpretation.csv", "images.csv", "interpretation.md"
FIGURES_DIR = "figures"


@dataclass(frozen=True)
class InterpretSpec:
    """A `pifexp interpret` call, checked."""

    dirs: tuple[Path, ...]
    out_dir: Path | None  # None: interpretation/ in the first of dirs
    methods: tuple[str, ...]
    attribution: AttributionSpec
    images: ImagesSpec  # images.manifest None: each seed's test images
    one_per_subject: bool = True  # the first test image of each subject (ADNI has visits)
    subjects_per_class: int | None = None  # None: every test subject
    seeds: int | None = None  # the first N finished seeds; None: all
    random_seed: int = 0  # torch seed of the re-initialised network (plus the run's seed)
    spearman_threshold: float = 0.5  # trained vs random |maps| above: the method is flagged
    signal_share: float = 0.2  # signal: |effect| above this share of its maximum
    effect_map: Path | None = None  # None: effect_map.nii.gz beside the manifest, if any
    mni152: bool = False  # the group means also on the 1 mm MNI152 template's grid
    figures: bool = True
    figure_group: str = "all"  # the group the figures show: all, or a class name
    figure_threshold: float = 0.2  # share of each map's maximum below which it is not drawn
    num_threads: int | None = None

    def __post_init__(self) -> None:
        if not self.dirs:
            raise ConfigError("dirs is empty: name at least one run folder")
        if self.subjects_per_class is not None and self.subjects_per_class < 1:
            raise ConfigError(f"subjects_per_class={self.subjects_per_class} must be >= 1")
        if self.seeds is not None and self.seeds < 1:
            raise ConfigError(f"seeds={self.seeds} must be >= 1 or null")
        for key in ("spearman_threshold", "signal_share", "figure_threshold"):
            if not 0 <= getattr(self, key) < 1:
                raise ConfigError(f"{key}={getattr(self, key)} must lie in [0, 1)")

    @property
    def output(self) -> Path:
        return self.out_dir or Path(self.dirs[0]) / rundir.INTERPRETATION_DIR


@dataclass(frozen=True)
class RunMaps:
    """One run's maps: its folder under OUT/maps/, its images and the masks they are scored on."""

    run: FinishedRun
    label: str  # the run's name under maps/ and in the tables
    folder: Path
    seeds: tuple[tuple[int, Path], ...]
    signal: np.ndarray | None  # None: no effect map, no signal scores
    brain: np.ndarray
    effect_map: Path | None
    images_source: str  # where the mapped images came from, for the summary


@dataclass(frozen=True)
class Interpretation:
    """What `interpret` wrote: the table, the summary and every file of its output folder."""

    out_dir: Path
    table: pd.DataFrame
    markdown: str
    files: list[Path]


def interpret(spec: InterpretSpec) -> Interpretation:
    """Maps of every run in spec.dirs (made where missing), then the tables, the summary and the
    figures of them all."""
    runs = interpret_runs(spec)
    scored = [_scored(maps, spec) for maps in runs]
    table = seed_table(scored, spec.spearman_threshold)
    images = pd.concat([run.scores.assign(cell=run.label) for run in scored], ignore_index=True)
    markdown = summary_markdown(table, scored, spec.spearman_threshold)
    out = spec.output
    files = [
        write_atomic(out / TABLE_FILE, lambda tmp: table.to_csv(tmp, index=False)),
        write_atomic(out / IMAGES_FILE, lambda tmp: images.to_csv(tmp, index=False)),
        write_text_atomic(out / SUMMARY_FILE, markdown),
    ]
    if spec.figures:
        files += [_figure(runs, method, spec) for method in spec.methods]
    return Interpretation(out, table, markdown, files)


def interpret_runs(spec: InterpretSpec) -> list[RunMaps]:
    """Every run's maps, made where they are missing; returns what the tables are built from."""
    runs = [open_finished_run(folder) for folder in find_run_dirs(spec.dirs)]
    if spec.num_threads:
        torch.set_num_threads(spec.num_threads)
    if "lrp" in spec.methods:  # before any work: LRP's rules must cover every layer
        for run in runs:
            check_lrp(run.network(run.seeds[0][1]))
    done = []
    for run, label in zip(runs, _labels(runs), strict=True):
        seeds = run.seeds if spec.seeds is None else run.seeds[: spec.seeds]
        folder = spec.output / MAPS_DIR / label
        _claim(folder, run, seeds)
        effect_map = _effect_map(run, spec)
        brain = brain_mask(run.grid, run.preprocess.mni_resolution)
        signal = None if effect_map is None else signal_mask(
            effect_map, run.grid, spec.signal_share, brain
        )  # fmt: skip
        source = str(run.data_source.get("text", "the run's cohort"))
        if spec.images.manifest is not None:
            source = f"the images of {spec.images.manifest} (given on the command line)"
        maps = RunMaps(run, label, folder, seeds, signal, brain, effect_map, source)
        _make_maps(maps, spec)
        done.append(maps)
    return done


def _make_maps(maps: RunMaps, spec: InterpretSpec) -> None:
    for method in spec.methods:
        _check_settings(maps.folder / method, _settings(method, spec, maps))
    todo = [
        (method, seed, folder)
        for method in spec.methods
        for seed, folder in maps.seeds
        if not (_seed_folder(maps, method, seed) / SCORES_FILE).is_file()
    ]
    if not todo:  # every seed done earlier: the cohort is not even opened
        _means(maps, spec, fresh=set())
        return
    cohort, images = seed_images(
        maps.run, maps.seeds, spec.images, spec.one_per_subject, spec.subjects_per_class
    )
    total = sum(len(images[seed]) for _, seed, _ in todo)
    bar = tqdm(total=total, desc=maps.label, unit="image", disable=not spec.images.progress)
    for method, seed, folder in todo:
        bar.set_postfix_str(f"{method}, seed {seed}")
        _seed_maps(maps, method, seed, folder, cohort, images[seed], spec, bar)
    bar.close()
    _means(maps, spec, fresh={method for method, _, _ in todo})


def _means(maps: RunMaps, spec: InterpretSpec, fresh: set[str]) -> None:
    """The arm's means over its seeds, for each method (again where a seed is new)."""
    for method in spec.methods:
        folders = [_seed_folder(maps, method, seed) for seed, _ in maps.seeds]
        arm_means(maps.folder / method, folders, maps.run, spec.mni152, method in fresh)


def _seed_maps(
    maps: RunMaps,
    method: str,
    seed: int,
    folder: Path,
    cohort: CachedCohort,
    images: pd.DataFrame,
    spec: InterpretSpec,
    bar: tqdm,
) -> None:
    """The seed's maps under trained and random weights for every image, their group means, and
    scores.csv (last: the seed is done)."""
    networks = {
        TRAINED: maps.run.network(folder),
        RANDOM: random_network(maps.run.network_spec(folder), spec.random_seed + seed),
    }
    found: dict[str, list[np.ndarray]] = {TRAINED: [], RANDOM: []}
    for x in volume_batches(cohort, images["row"].to_numpy(), spec.attribution.batch_size):
        for weights, network in networks.items():
            found[weights].append(attribute(network, x, method, spec.attribution).numpy())
        bar.update(len(x))
    target = _seed_folder(maps, method, seed)
    stacked = {weights: np.concatenate(parts) for weights, parts in found.items()}
    agreement = rank_agreement(stacked[TRAINED], stacked[RANDOM], maps.brain)
    rows = []
    for weights, volumes in stacked.items():
        for name, volume in zip(images["name"], volumes, strict=True):
            write_nifti(target / weights / f"{name}.nii.gz", grid_image(volume, maps.run.grid))
        group_means(target / weights, normalized(volumes), images[LABEL].to_numpy(),
                    maps.run.classes, maps.run.grid)  # fmt: skip
        scores = signal_scores(volumes, maps.signal, maps.brain) if maps.signal is not None else {}
        rows.append(
            images[["name", SUBJECT, SESSION, LABEL]].assign(
                weights=weights,
                auc=scores.get("auc", np.nan),
                mass_inside=scores.get("mass_inside", np.nan),
                spearman_trained_random=agreement,
            )
        )
    table = pd.concat(rows, ignore_index=True)
    write_atomic(target / SCORES_FILE, lambda tmp: table.to_csv(tmp, index=False))


def _seed_folder(maps: RunMaps, method: str, seed: int) -> Path:
    return maps.folder / method / f"seed-{seed}"


def _labels(runs: list[FinishedRun]) -> list[str]:
    """Each run's name in the tables and under maps/: its cell (task-model-setting), with its
    folder's name where two runs are the same cell."""
    names = [run.name for run in runs]
    labels = [
        name if names.count(name) == 1 else safe_name(f"{name}-{run.run_dir.name}")
        for name, run in zip(names, runs, strict=True)
    ]
    return [label if labels.count(label) == 1 else f"{label}-{i}" for i, label in enumerate(labels)]


def _claim(folder: Path, run: FinishedRun, seeds: tuple[tuple[int, Path], ...]) -> None:
    """run.json: the run these maps are of. A folder holding another run's maps (a seed whose
    network, weights or split differ) is refused, never overwritten."""
    record = {str(seed): run.fingerprint(path) for seed, path in seeds}
    path = folder / RUN_FILE
    if path.is_file():
        held = _record(path)
        clash = [k for k, digest in record.items() if held["seeds"].get(k, digest) != digest]
        if clash:
            raise PifexpError(
                f"{folder} holds the maps of another run ({held['run_dir']}; seed {clash[0]} "
                "differs); choose another out_dir"
            )
        record = {**held["seeds"], **record}
    write_json_atomic(path, {"run_dir": str(run.run_dir.resolve()), "seeds": record})


def _settings(method: str, spec: InterpretSpec, maps: RunMaps) -> dict[str, Any]:
    """What decides a method's maps and scores (not how fast they are made)."""
    attribution = asdict(spec.attribution)  # batch_size and chunk change only the speed
    prefix = f"{method}_"  # ig_steps, gradcam_layer, occlusion_window, ...; not batch_size
    return {
        "method": method,
        **{key: value for key, value in attribution.items() if key.startswith(prefix)},
        "manifest": None if spec.images.manifest is None else str(spec.images.manifest.resolve()),
        "one_per_subject": spec.one_per_subject,
        "subjects_per_class": spec.subjects_per_class,
        "random_seed": spec.random_seed,
        "effect_map": None if maps.effect_map is None else str(maps.effect_map),
        "signal_share": spec.signal_share,
    }


def _check_settings(folder: Path, settings: dict[str, Any]) -> None:
    path = folder / SETTINGS_FILE
    if path.is_file():
        held = _record(path)
        changed = [key for key in settings if held.get(key) != settings[key]]
        if changed:
            key = changed[0]
            raise PifexpError(
                f"{folder} holds maps made with other settings ({key}: {held.get(key)!r} -> "
                f"{settings[key]!r}); choose another out_dir"
            )
        return
    write_json_atomic(path, settings)


def _record(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise PifexpError(f"{path} cannot be read ({error}); choose another out_dir") from None


def _effect_map(run: FinishedRun, spec: InterpretSpec) -> Path | None:
    """The effect map to score against: the one given, or effect_map.nii.gz beside the images'
    manifest (synthetic cohorts write one)."""
    if spec.effect_map is not None:
        if not Path(spec.effect_map).is_file():
            raise PifexpError(f"effect_map={spec.effect_map} is not a file")
        return Path(spec.effect_map)
    manifest = spec.images.manifest or run.manifest
    beside = None if manifest is None else Path(manifest).expanduser().parent / EFFECT_MAP_FILE
    return beside if beside is not None and beside.is_file() else None


def _scored(maps: RunMaps, spec: InterpretSpec) -> ScoredRun:
    """The run's per-image scores of every method and seed, read back from scores.csv."""
    frames = [
        pd.read_csv(
            _seed_folder(maps, method, seed) / SCORES_FILE,
            dtype={SUBJECT: str, SESSION: str, "name": str},
            keep_default_na=False,
            na_values={"auc": [""], "mass_inside": [""], "spearman_trained_random": [""]},
        ).assign(seed=seed, method=method)
        for method in spec.methods
        for seed, _ in maps.seeds
    ]
    signal = np.nan if maps.signal is None else float(maps.signal.sum() / maps.brain.sum())
    return ScoredRun(
        label=maps.label,
        run_dir=maps.run.run_dir,
        task=maps.run.task,
        setting=maps.run.setting,
        model=maps.run.model,
        data_source=maps.images_source,
        scores=pd.concat(frames, ignore_index=True),
        signal_share=signal,
    )


def _figure(runs: list[RunMaps], method: str, spec: InterpretSpec) -> Path:
    """figures/<method>.png: every run's mean |map| of the figure group, one row each."""
    group = spec.figure_group
    rows = []
    for maps in runs:
        folder = maps.folder / method
        trained = mean_path(folder / TRAINED, group)
        if not trained.is_file():
            raise PifexpError(
                f"figure_group={group!r}: {maps.label} has no such group (all, or a class name "
                f"of the task: {', '.join(maps.run.classes)})"
            )
        architecture = maps.run.network_spec(maps.seeds[0][1]).architecture
        rows.append(
            FigureRow(
                f"{maps.label}: {architecture}",
                nib.load(trained),
                nib.load(mean_path(folder / RANDOM, group)),
            )
        )
    effect = next((nib.load(m.effect_map) for m in runs if m.effect_map is not None), None)
    seeds = max(len(maps.seeds) for maps in runs)
    caption = (
        f"mean |map| over the test images ({group}) of {seeds} seed(s), trained weights; drawn "
        f"above {spec.figure_threshold:.0%} of each map's maximum"
    )
    if any(m.run.data_source.get("source") == "synthetic" for m in runs):
        caption += "; synthetic data"
    path = spec.output / FIGURES_DIR / f"{method}.png"
    return method_figure(path, method, rows, effect, spec.figure_threshold, caption)
