"""Errors, asset folders, external tools, quantizer arithmetic, build-directory ownership."""
