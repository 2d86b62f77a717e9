"""Carry the asset folders (rtl/, sim/, models/, boards/, hls_templates/) in the wheel
as flow/_assets/<name>, where flow.core.assets.asset_path finds them."""
from pathlib import Path
import shutil

from setuptools import setup
from setuptools.command.build_py import build_py

ASSETS = ("rtl", "sim", "models", "boards", "hls_templates")


class BuildWithAssets(build_py):
    def run(self):
        super().run()
        root = Path(__file__).resolve().parent
        for name in ASSETS:
            src = root / name
            if src.is_dir():
                dst = Path(self.build_lib) / "flow" / "_assets" / name
                if dst.exists():
                    shutil.rmtree(dst)
                shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "sim_build*"))


setup(cmdclass={"build_py": BuildWithAssets})
