"""Kept so that `python setup.py develop` works; metadata lives in pyproject.toml."""

from setuptools import setup

setup()
