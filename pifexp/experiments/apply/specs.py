"""The specs of the commands that apply finished runs (pifexp predict, pifexp interpret), from
their composed Hydra configs; built from plain values with specs.plain, checked as they are
built."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from pifexp.errors import ConfigError, PifexpError
from pifexp.experiments.apply.attribution import AttributionSpec, check_methods
from pifexp.experiments.apply.interpret import InterpretSpec
from pifexp.experiments.apply.new_images import ImagesSpec
from pifexp.experiments.apply.predict import PredictSpec
from pifexp.experiments.specs import manifest_path, plain

IMAGE_CHOICES = ("subject", "all")


def images_spec(cfg: DictConfig, manifest_required: bool) -> ImagesSpec:
    """data.manifest (required for predict), data.cache_dir, data.workers, data.progress and
    data.check.mni_margin_mm; the preprocessing is the run's own."""
    if manifest_required:
        manifest: Path | None = manifest_path(cfg, "pifexp predict RUN_DIR")
    else:
        given = plain(cfg, "data.manifest")
        manifest = None if given is None else Path(str(given)).expanduser()
    return ImagesSpec(
        manifest=manifest,
        cache_dir=Path(str(plain(cfg, "data.cache_dir"))).expanduser(),
        workers=plain(cfg, "data.workers"),
        progress=bool(plain(cfg, "data.progress")),
        mni_margin_mm=float(plain(cfg, "data.check.mni_margin_mm")),
    )


def predict_spec(cfg: DictConfig) -> PredictSpec:
    """pifexp predict RUN_DIR data.manifest=FILE [out=FILE]."""
    (run_dir,) = _folders(cfg, "run_dir", "pifexp predict RUN_DIR data.manifest=FILE", one=True)
    out = plain(cfg, "out")
    return PredictSpec(
        run_dir=run_dir,
        images=images_spec(cfg, manifest_required=True),
        out=None if out is None else Path(str(out)).expanduser(),
        batch_size=_count(cfg, "batch_size"),
        num_threads=_count(cfg, "num_threads", optional=True),
    )


def interpret_spec(cfg: DictConfig) -> InterpretSpec:
    """pifexp interpret DIR... [method=...] [out_dir=DIR] and the settings of configs/interpret."""
    dirs = _folders(cfg, "dirs", "pifexp interpret RUN_DIR (or a table1 folder, or several)")
    method = plain(cfg, "method")
    images = str(plain(cfg, "images"))
    if images not in IMAGE_CHOICES:
        raise ConfigError(f"images={images!r} must be one of {', '.join(IMAGE_CHOICES)}")
    out_dir, effect_map = plain(cfg, "out_dir"), plain(cfg, "signal.effect_map")
    return InterpretSpec(
        dirs=dirs,
        out_dir=None if out_dir is None else Path(str(out_dir)).expanduser(),
        methods=check_methods([method] if isinstance(method, str) else list(method)),
        attribution=AttributionSpec(
            ig_steps=plain(cfg, "ig.steps"),
            gradcam_layer=str(plain(cfg, "gradcam.layer")),
            occlusion_window=plain(cfg, "occlusion.window"),
            occlusion_stride=plain(cfg, "occlusion.stride"),
            lrp_epsilon=_real(cfg, "lrp.epsilon"),
            batch_size=plain(cfg, "batch_size"),
            chunk=plain(cfg, "chunk"),
        ),
        images=images_spec(cfg, manifest_required=False),
        one_per_subject=images == "subject",
        subjects_per_class=_count(cfg, "subjects_per_class", optional=True),
        seeds=_count(cfg, "seeds", optional=True),
        random_seed=_integer(cfg, "sanity.random_seed"),
        spearman_threshold=_real(cfg, "sanity.spearman_threshold"),
        signal_share=_real(cfg, "signal.threshold"),
        effect_map=None if effect_map is None else Path(str(effect_map)).expanduser(),
        mni152=bool(plain(cfg, "mni152")),
        figures=bool(plain(cfg, "figures.enabled")),
        figure_group=str(plain(cfg, "figures.group")),
        figure_threshold=_real(cfg, "figures.threshold"),
        num_threads=_count(cfg, "num_threads", optional=True),
    )


def _folders(cfg: DictConfig, key: str, usage: str, one: bool = False) -> tuple[Path, ...]:
    """The command's bare arguments (cli: positional), as folders."""
    if OmegaConf.is_missing(cfg, key) or cfg.get(key) is None:
        raise PifexpError(f"{key} is required: {usage}")
    given = plain(cfg, key)
    listed = given if isinstance(given, list) else [given]
    folders = tuple(Path(str(folder)).expanduser() for folder in listed)
    if not folders or (one and len(folders) != 1):
        wanted = "one run folder" if one else "at least one folder"
        raise PifexpError(f"{key}: name {wanted}: {usage}")
    return folders


def _count(cfg: DictConfig, key: str, optional: bool = False) -> Any:
    value = plain(cfg, key)
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        null = " or null" if optional else ""
        raise ConfigError(f"{key}={value!r} must be an integer >= 1{null}")
    return value


def _real(cfg: DictConfig, key: str) -> float:
    value = plain(cfg, key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{key}={value!r} must be a number")
    return float(value)


def _integer(cfg: DictConfig, key: str) -> int:
    value = plain(cfg, key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{key}={value!r} must be an integer")
    return value
