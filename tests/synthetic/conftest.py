"""Fixtures shared by the synthetic cohort tests: settings and the anatomy of a tiny grid."""

from __future__ import annotations

import pytest
from cohort_files import TINY_GRID, settings_for

from pifexp.synthetic import CohortSettings
from pifexp.synthetic.anatomy import Anatomy, build_anatomy


@pytest.fixture(scope="session")
def ms_settings() -> CohortSettings:
    """Tiny MS-like settings (lesions, atrophy): 10 subjects on a 24x28x24 grid, one worker."""
    return settings_for(
        "task=ms", "data.synthetic.n_subjects=10", TINY_GRID, "data.synthetic.workers=1"
    )


@pytest.fixture(scope="session")
def tiny_anatomy(ms_settings: CohortSettings) -> Anatomy:
    """The reference anatomy on the 24x28x24 grid, with lesion candidates; built once."""
    synthetic = ms_settings.synthetic
    return build_anatomy(
        ms_settings.grid,
        synthetic["anatomy"],
        synthetic["lesions"],
        synthetic["grid"]["template_resolution"],
    )
