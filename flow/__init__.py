"""bnnflow: from quantized PyTorch networks to bit-exact streaming dataflow accelerators."""

__version__ = "0.1.0"
