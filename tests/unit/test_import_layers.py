"""The package's layers, as its imports draw them: measuring below training, nothing climbing
back up to the package root."""

from __future__ import annotations

import ast
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


def test_no_module_imports_the_package_root():
    """`from kdfair import <submodule>` is fine; `import kdfair` or a name defined by
    kdfair/__init__.py (such as __version__) would run an import back up to the root."""
    submodules = {p.stem for p in PACKAGE.glob("*.py")} | {
        p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()
    }
    climbing = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                climbing += [
                    f"{path.name}: import kdfair" for a in node.names if a.name == "kdfair"
                ]
            elif isinstance(node, ast.ImportFrom) and node.module == "kdfair" and not node.level:
                climbing += [
                    f"{path.name}: from kdfair import {a.name}"
                    for a in node.names
                    if a.name not in submodules
                ]
    assert not climbing, climbing
