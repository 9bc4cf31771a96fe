"""Repeats over seeds, the Table 1 batch, reports and plots."""
