"""The one place where a composed Hydra config becomes the typed specs that the packages take.

Every spec checks its values when it is built, so a bad setting stops a command before any work
starts, with one line that names the setting. Below this module nothing sees a Hydra config:
data/, models/, training/, layers/ and synthetic/ take these specs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from pifexp.data.augment import AugmentSettings, augment_settings
from pifexp.data.cohort import DataSpec
from pifexp.data.preprocess import PreprocessSpec
from pifexp.data.splits import SplitSpec
from pifexp.errors import ConfigError, PifexpError
from pifexp.experiments.protocol import SearchSpec
from pifexp.models import NetworkSpec, network_spec
from pifexp.synthetic import CohortSettings, cohort_settings
from pifexp.training.spec import TrainerSpec

# Table 1's settings and the data.subset each stands for
FULL, SMALL = "full", "small"


@dataclass(frozen=True)
class RunSpec:
    """Everything one `pifexp train` run (one cell, every seed) needs, checked."""

    task: str
    model: str
    architecture: str
    protocol: str
    profile: str
    setting: str  # full | small (or a setting of one's own)
    data: DataSpec
    manifest: Path | None  # None: synthetic, generated (or found) on first use
    synthetic: CohortSettings | None
    split: SplitSpec
    augment: AugmentSettings
    network: NetworkSpec
    trainer: TrainerSpec
    search: SearchSpec | None
    config: dict[str, Any]  # the resolved config, as config.yaml records it

    @property
    def subset(self) -> float:
        return self.split.subset


def plain(cfg: DictConfig, key: str) -> Any:
    """cfg's node at `key` as plain Python (resolved); a missing or broken value names its key."""
    try:
        node = OmegaConf.select(cfg, key, throw_on_missing=True)
        if isinstance(node, DictConfig | ListConfig):
            return OmegaConf.to_container(node, resolve=True, throw_on_missing=True)
        return node
    except OmegaConfBaseException as error:
        raise ConfigError(f"{key}: {str(error).splitlines()[0]}") from None


def synthetic_spec(cfg: DictConfig) -> CohortSettings:
    """The synthetic cohort that cfg describes (task, data.synthetic), checked."""
    try:
        task_name = str(cfg.task.name)
        classes = [str(name) for name in cfg.task.classes]
        input_shape = list(cfg.task.input_shape)
        tasks = cfg.data.synthetic.get("tasks") or {}
        if task_name not in tasks:  # before resolving: settings are looked up by task name
            raise ConfigError(
                f"data.synthetic.tasks has no entry for task.name={task_name!r} "
                f"(it has {', '.join(sorted(tasks)) or 'none'})"
            )
        synthetic = OmegaConf.to_container(cfg.data.synthetic, resolve=True, throw_on_missing=True)
    except OmegaConfBaseException as error:
        raise ConfigError(f"data.synthetic: {str(error).splitlines()[0]}") from None
    return cohort_settings(synthetic, task_name=task_name, classes=classes, input_shape=input_shape)


def preprocess_spec(cfg: DictConfig) -> PreprocessSpec:
    """task.preprocess, task.input_shape and the data source's grid settings."""
    preprocess = plain(cfg, "task.preprocess")
    crop = preprocess["crop"]
    return PreprocessSpec(
        mask=preprocess["mask"],
        crop=None if crop is None else tuple(tuple(pair) for pair in crop),
        target_shape=tuple(int(n) for n in plain(cfg, "task.input_shape")),
        interpolation=preprocess["interpolation"],
        normalize=preprocess["normalize"],
        dtype=preprocess["dtype"],
        resample_to=plain(cfg, "data.resample_to"),
        mni_resolution=int(plain(cfg, "data.mni_resolution")),
        affine_atol_mm=float(plain(cfg, "data.check.affine_atol_mm")),
    )


def data_spec(cfg: DictConfig) -> DataSpec:
    """How the cohort is read, checked, cached and served (task.classes, data.*)."""
    return DataSpec(
        classes=tuple(str(name) for name in plain(cfg, "task.classes")),
        preprocess=preprocess_spec(cfg),
        cache_dir=Path(str(plain(cfg, "data.cache_dir"))).expanduser(),
        mixed_label_subjects=str(plain(cfg, "task.mixed_label_subjects")),
        workers=plain(cfg, "data.workers"),
        progress=bool(plain(cfg, "data.progress")),
        mni_margin_mm=float(plain(cfg, "data.check.mni_margin_mm")),
        on_device=plain(cfg, "data.on_device"),
        device_memory_fraction=float(plain(cfg, "data.device_memory_fraction")),
    )


def manifest_path(cfg: DictConfig, command: str = "pifexp train data=manifest") -> Path:
    """data.manifest, which a cohort of one's own needs."""
    if OmegaConf.is_missing(cfg.data, "manifest") or cfg.data.get("manifest") is None:
        raise PifexpError(
            f"data.manifest is required: {command} data.manifest=FILE (a CSV/TSV manifest)"
        )
    return Path(str(cfg.data.manifest)).expanduser()


def network_spec_of(cfg: DictConfig) -> NetworkSpec:
    """The network of model (model/ and network/ groups) at task.input_shape."""
    return network_spec(plain(cfg, "model"), plain(cfg, "task.input_shape"))


def trainer_spec(cfg: DictConfig) -> TrainerSpec:
    """trainer.* and protocol.selection."""
    trainer = plain(cfg, "trainer")
    try:
        return TrainerSpec(**trainer, selection=str(plain(cfg, "protocol.selection")))
    except TypeError as error:  # a key that TrainerSpec does not know
        raise ConfigError(f"trainer: {error}".replace("TrainerSpec.__init__() ", "")) from None


def search_spec(cfg: DictConfig) -> SearchSpec | None:
    """protocol.search (scirep2021's inner random search), or None."""
    search = plain(cfg, "protocol").get("search")
    if not search:
        return None
    return SearchSpec(
        runs=int(search["runs"]),
        window=int(search["window"]),
        seed=int(search["seed"]),
        space={key: tuple(values) for key, values in search["space"].items()},
    )


def split_spec(cfg: DictConfig) -> SplitSpec:
    """task.split (fractions or per-class counts, fixed_seed, counts_for_subjects) and
    data.subset, data.subset_unit, data.subset_scope, data.train_subjects. Keys that run folders
    of earlier versions lack take their old meaning."""
    split = plain(cfg, "task.split")
    return SplitSpec(
        test_fraction=_number_or_none(split.get("test_fraction")),
        val_fraction=_number_or_none(split.get("val_fraction")),
        subset=float(plain(cfg, "data.subset")),
        test_per_class=split.get("test_per_class"),
        val_per_class=split.get("val_per_class"),
        subset_unit=str(OmegaConf.select(cfg, "data.subset_unit", default="subject")),
        subset_scope=str(OmegaConf.select(cfg, "data.subset_scope", default="train")),
        fixed_seed=split.get("fixed_seed"),
        counts_for_subjects=split.get("counts_for_subjects"),
        train_subjects=_count_or_all(OmegaConf.select(cfg, "data.train_subjects", default=None)),
    )


def _count_or_all(value: Any) -> Any:
    """data.train_subjects: `all` (a study's level name) is null, every training subject."""
    return None if value == "all" else value


def _number_or_none(value: Any) -> Any:
    """A config's number as a float (YAML may give 1 for 1.0); anything else as it is, for the
    spec to name."""
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    return float(value) if is_number else value


def run_spec(cfg: DictConfig) -> RunSpec:
    """The run that a composed `pifexp train` config describes."""
    source = str(plain(cfg, "data.source"))
    synthetic = synthetic_spec(cfg) if source == "synthetic" else None
    manifest = None if synthetic is not None else manifest_path(cfg)
    network = network_spec_of(cfg)
    split = split_spec(cfg)
    setting = str(plain(cfg, "setting.name"))
    if setting in (FULL, SMALL) and (setting == FULL) != (split.subset >= 1):
        raise ConfigError(
            f"data.subset={split.subset} does not fit setting={setting} (full: every training "
            f"subject, data.subset=1; small: data.subset below 1); choose "
            f"setting={SMALL if split.subset < 1 else FULL}"
        )
    return RunSpec(
        task=str(plain(cfg, "task.name")),
        model=network.name,
        architecture=network.architecture,
        protocol=str(plain(cfg, "protocol.name")),
        profile=str(plain(cfg, "profile.name")),
        setting=setting,
        data=data_spec(cfg),
        manifest=manifest,
        synthetic=synthetic,
        split=split,
        augment=augment_settings(plain(cfg, "task.augment"), pif=network.name == "pif"),
        network=network,
        trainer=trainer_spec(cfg),
        search=search_spec(cfg),
        config=plain_config(cfg),
    )


def plain_config(cfg: DictConfig) -> dict[str, Any]:
    """The whole config, resolved, as plain Python."""
    try:
        return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]
    except OmegaConfBaseException as error:
        raise ConfigError(str(error).splitlines()[0]) from None
