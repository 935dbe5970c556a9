"""The package version, in a leaf module so that any vaekit module can read it without importing
the package root (pyproject.toml reads it from here too)."""

__version__ = "0.1.0"
