"""Locate the non-Python asset folders (rtl/, sim/, models/, boards/, hls_templates/).

From a checkout they sit next to flow/; an installed wheel carries them as package data
under flow/_assets/.
"""
from __future__ import annotations

from pathlib import Path

_PKG = Path(__file__).resolve().parent.parent  # the flow package
ASSET_NAMES = ("rtl", "sim", "models", "boards", "hls_templates")


def asset_path(name: str) -> Path:
    """Return the folder of asset `name` (one of ASSET_NAMES)."""
    if name not in ASSET_NAMES:
        raise ValueError(f"unknown asset folder {name!r}; known: {', '.join(ASSET_NAMES)}")
    for candidate in (_PKG / "_assets" / name, _PKG.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"asset folder {name!r} not found next to {_PKG}")
