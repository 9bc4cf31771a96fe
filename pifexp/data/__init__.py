"""Cohorts: manifests, NIfTI loading and checks, cache, splits, augmentation, synthetic cohorts."""
