"""The distilled populations beyond the paper's DS: distillation methods and controls, by name.

A torch-free leaf, so the analysis can name populations without importing the training code.
`kdfair.losses` and `kdfair.objectives` implement the methods, `kdfair.controls` the controls.
"""

from __future__ import annotations

METHODS = ("kd", "dkd", "at")  # distill.method
CONTROLS = ("none", "smoothing", "shuffled")  # distill.control
# A distilled row's method and control where results.csv predates them
DEFAULTS = {"method": "kd", "control": "none"}


def variant_name(method: str, control: str) -> str:
    """A distilled population's name beyond its T: "" for kd without a control (the paper's
    DS), else the method, the control, or both ("at+shuffled")."""
    parts = [p for p, plain in ((method, "kd"), (control, "none")) if p != plain]
    return "+".join(parts)


def split_variant(variant: str) -> tuple[str, str]:
    """(method, control) of a variant name: the inverse of variant_name."""
    parts = variant.split("+") if variant else []
    method = next((p for p in parts if p in METHODS), "kd")
    control = next((p for p in parts if p in CONTROLS), "none")
    return method, control
