"""Experiments: from a composed config to specs, runs over seeds, the Table 1 batch, the studies
and reports.

Owns: the one translation of a Hydra config into specs (specs.py), the run folder's layout and
files (rundir.py), a run over seeds (run.py) and its summary in words (summary.py), the 2021
inner search (protocol.py), a batch's cells (cells.py), the Table 1 batch (table1.py), the
studies and their folder's study.json (study.py), reports from run folders (report/) and
finished runs applied to new subjects and interpreted (apply/).
May import: every package below it (data, synthetic, models, training, layers), omegaconf and
hydra; never pifexp.commands or pifexp.cli, and it neither prints nor exits.
"""
