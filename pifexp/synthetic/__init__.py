"""The synthetic cohort generator: MNI-space cohorts that stand in for UK Biobank (sex), ADNI
(AD vs CN) and MS vs HC.

Every subject is the MNI152 template, changed: natural variation of regional volumes, head size,
ageing (grey-matter loss, ventricle enlargement), the task's class signal (regional atrophy or
growth, white-matter lesions), then a smooth residual misregistration, a bias field, scanner gain
and noise. A cohort is a folder with the images, `manifest.csv` (one row per image) and
`effect_map.nii.gz` (the expected class 1 image minus the expected class 0 image), which the
data pipeline reads like any cohort: it only ever receives the manifest's path.

This package owns the generator, one concern per module:

    settings   CohortSettings and cohort_settings: checks, the key of the settings, the folder
    plan       plan_cohort: one row per image with every number it is drawn from (pure)
    anatomy    the MNI152 anatomy on the cohort's grid (pure)
    lesions    white-matter lesions: drawn, painted, expected load (pure)
    render     from a plan row to an image, and the effect map (pure: arrays in, arrays out)
    store      the only module with processes and folders: worker processes, the hidden
               staging folder, cohort.json, reuse of a finished cohort (ensure_cohort)
    montage    montage.png of a finished cohort

It may import numpy, scipy, nibabel, nilearn and pandas (matplotlib inside `montage` only),
pifexp.data.grid, pifexp.data.parallel, pifexp.errors and pifexp.files; never omegaconf or
hydra, pifexp.experiments, pifexp.commands or pifexp.cli. Its settings arrive as plain Python
values (`cohort_settings`); turning a composed config into them is the caller's job.
"""

from pifexp.synthetic.anatomy import cohort_grid
from pifexp.synthetic.montage import write_montage
from pifexp.synthetic.plan import plan_cohort
from pifexp.synthetic.render import effect_map, synthesize_image
from pifexp.synthetic.settings import (
    COHORT_FILE,
    EFFECT_MAP_FILE,
    MANIFEST_FILE,
    MONTAGE_FILE,
    CohortSettings,
    cohort_settings,
)
from pifexp.synthetic.store import ensure_cohort, unfinished_cohorts

__all__ = [
    "COHORT_FILE",
    "EFFECT_MAP_FILE",
    "MANIFEST_FILE",
    "MONTAGE_FILE",
    "CohortSettings",
    "cohort_grid",
    "cohort_settings",
    "effect_map",
    "ensure_cohort",
    "plan_cohort",
    "synthesize_image",
    "unfinished_cohorts",
    "write_montage",
]
