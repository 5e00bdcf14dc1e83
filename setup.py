"""Package layout: the library lives in ``xling/`` and the Typer app in ``cli/``,
installed as the subpackage ``xling.cli`` (no top-level ``cli`` module lands in site-packages)."""
from setuptools import find_packages, setup

packages = find_packages(include=["xling", "xling.*"])
packages += ["xling.cli"] + ["xling.cli." + p for p in find_packages("cli")]
setup(packages=packages, package_dir={"xling.cli": "cli"}, include_package_data=True)
