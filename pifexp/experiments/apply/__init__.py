"""Finished runs applied: `pifexp predict` (new subjects) and `pifexp interpret` (attribution
maps, scored against the synthetic cohorts' true signal and checked against random weights).

Owns: reading a finished run from its folder alone (finished), new images through the run's own
preprocessing (new_images), the commands' specs (specs), prediction (predict), attribution
methods (attribution, captum), their scores (scores), which images are mapped (images), group
means (means), the summary table (summary) and figures (figures); interpret runs them.
May import: torch, captum, nilearn, nibabel, scipy, scikit-learn, pandas, pifexp.data,
pifexp.models, pifexp.training.metrics, pifexp.experiments.rundir, .report (statistics, runs)
and .specs; never pifexp.commands or pifexp.cli.
"""
