"""Sweep -> tables and figures. Reads only results.csv and the predictions it points to."""

from kdfair.analysis.report import analyze

__all__ = ["analyze"]
