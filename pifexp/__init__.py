"""pifexp: patch individual filter layers for CNNs on MNI-normalized brain MRI."""

__version__ = "0.1.0"
