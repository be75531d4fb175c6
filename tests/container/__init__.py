"""Tests of the image, its build and push scripts, and the notebooks (a package: its conftest must not
shadow tests/conftest.py, which other test modules import by name)."""
