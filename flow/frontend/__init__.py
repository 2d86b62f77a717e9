"""QONNX in (load, check, clean up) and PyTorch/Brevitas out to QONNX (export)."""
