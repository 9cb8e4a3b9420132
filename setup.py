"""Packages are found, not listed: every package below imgindex/, plus the top-level schema/
folder shipped as imgindex.schema (see pyproject.toml). Everything else is in pyproject.toml."""

from setuptools import find_packages, setup

setup(packages=[*find_packages(include=["imgindex", "imgindex.*"]), "imgindex.schema"])
