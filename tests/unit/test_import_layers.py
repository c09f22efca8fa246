"""The package's layers, as its imports draw them: measuring below training, nothing climbing
back up to the package root."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import kdfair

PACKAGE = Path(kdfair.__file__).parent
# The training stack's heavy imports: what `kdfair analyze` must run without.
TRAINING_STACK = ("torch", "torchvision", "transformers", "timm")

# Run in a fresh interpreter: a finder that refuses the training stack goes first on
# sys.meta_path, so any import of it, however deep, fails as it would where it is not installed.
BLOCKED_IMPORT = """
import importlib, sys

class Refuse:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in {blocked!r}:
            raise ImportError(f"{{name}} is blocked by the test")

sys.meta_path.insert(0, Refuse())
for module in {modules!r}:
    importlib.import_module(module)
loaded = sorted(m for m in sys.modules if m.partition(".")[0] in {blocked!r})
assert not loaded, loaded
print("loaded", len({modules!r}), "modules")
"""


def modules_of(package: str) -> list[str]:
    folder = PACKAGE.joinpath(*package.split(".")[1:])
    return [package] + [
        f"{package}.{p.stem}" for p in sorted(folder.glob("*.py")) if p.stem != "__init__"
    ]


def test_metrics_and_analysis_load_without_the_training_stack():
    modules = [*modules_of("kdfair.metrics"), *modules_of("kdfair.analysis"), "kdfair.predictions"]
    script = BLOCKED_IMPORT.format(blocked=TRAINING_STACK, modules=modules)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert f"loaded {len(modules)} modules" in result.stdout

