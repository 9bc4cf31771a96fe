"""Cohorts for training: manifests, NIfTI reading and checks, preprocessing, the cache, splits,
augmentation and batches.

Owns: the manifest (manifest.py), the cache folder's format (cache.py), the data specs
(DataSpec in cohort.py, PreprocessSpec, SplitSpec, AugmentSettings).
May import: numpy, pandas, nibabel, nilearn, scikit-learn, torch, tqdm, pifexp.errors,
pifexp.files. It receives a manifest path and specs: never a Hydra config, never pifexp.synthetic,
pifexp.experiments or pifexp.commands.
"""
