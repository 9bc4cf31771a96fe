import pytest
from hydra import compose, initialize_config_dir

from pifexp.config_dir import config_dir


@pytest.fixture
def compose_config():
    """Compose a primary config with overrides, as the CLI would."""

    def compose_(config_name: str, overrides: list[str] | tuple[str, ...] = ()):
        with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
            return compose(config_name, overrides=list(overrides))

    return compose_


@pytest.fixture
def tiny_train_overrides(tmp_path):
    """A `pifexp train` cell that runs in seconds: a small synthetic cohort on a 32x38x32 grid."""
    return [
        "profile=quick",
        "task.input_shape=[32,38,32]",
        "data.synthetic.n_subjects=16",
        f"data.synthetic.out_dir={tmp_path / 'cohort'}",
        f"data.cache_dir={tmp_path / 'cache'}",
        "trainer.seeds=2",
        "trainer.max_epochs=3",
        "trainer.ignore_before=0",
        "trainer.patience=1",
        "trainer.batch_size=4",
        "trainer.progress=false",
        "data.progress=false",
    ]
