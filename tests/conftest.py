import pytest
from hydra import compose, initialize_config_dir

from pifexp.cli import config_dir


@pytest.fixture
def compose_config():
    """Compose a primary config with overrides, as the CLI would."""

    def compose_(config_name: str, overrides: list[str] | tuple[str, ...] = ()):
        with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
            return compose(config_name, overrides=list(overrides))

    return compose_
