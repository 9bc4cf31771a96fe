"""Training one network: the loop (epochs of Adam on BCEWithLogits, validation, the state to
test), early stopping, test metrics, and the trainer spec.

Owns: TrainerSpec (training/spec.py).
May import: torch, numpy, scikit-learn, pifexp.errors; never a Hydra config, never pifexp.data,
pifexp.experiments or pifexp.commands (batches arrive as iterables of tensors).
"""
