"""Trainable quantized layers, datasets, the model zoo and training."""
