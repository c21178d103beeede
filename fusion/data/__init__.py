"""Datasets: the manifest CSV format (``manifest``) and the built-in digits dataset (``digits``)."""

from .manifest import read_manifest, write_manifest

__all__ = ["read_manifest", "write_manifest"]
