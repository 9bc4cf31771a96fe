"""Training loop, early stopping, metrics."""
