#!/usr/bin/env bash
# scripts/gpu_wheels.sh DIR: the wheels scripts/gpu_check.sh installs on a GPU machine without
# network, prepared beforehand on a machine with one. For the GPU machines here (Python 3.12,
# x86_64 manylinux, their own torch 2.11): kdfair's dependencies except torch, with their own
# dependencies, as binary wheels for that platform (whatever this machine's Python is);
# antlr4-python3-runtime (omegaconf's parser, published only as a source package) built into a
# wheel here; torchvision (for machines without it) and pytest without dependencies, so no torch
# wheel is ever fetched. Set TARGET_PYTHON (3.12), TARGET_TORCH (2.11) or PLATFORMS to change the
# target; PYTHON picks the Python that runs pip.
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: scripts/gpu_wheels.sh DIR" >&2; exit 2; }
REPO=$(cd "$(dirname "$0")/.." && pwd)
DIR=$1
PY=${PYTHON:-python3}
TARGET_PYTHON=${TARGET_PYTHON:-3.12}
TARGET_TORCH=${TARGET_TORCH:-2.11}
PLATFORMS=${PLATFORMS:-"manylinux_2_28_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64"}
mkdir -p "$DIR"
ABI="cp${TARGET_PYTHON/./}"
platform_args=()
for p in $PLATFORMS; do platform_args+=(--platform "$p"); done
target=(--only-binary=:all: --python-version "$TARGET_PYTHON" --implementation cp --abi "$ABI"
        --abi abi3 --abi none "${platform_args[@]}")

# omegaconf 2.3 pins antlr4-python3-runtime 4.9.*: pure Python, so one wheel fits every machine
"$PY" -m pip wheel --no-deps --wheel-dir "$DIR" "antlr4-python3-runtime==4.9.3"

# kdfair's dependencies from pyproject.toml, torch and torchvision left out (the machine's own)
"$PY" - "$REPO/pyproject.toml" > "$DIR/requirements.txt" <<'PYEOF'
import re, sys, tomllib
deps = tomllib.load(open(sys.argv[1], "rb"))["project"]["dependencies"]
for dep in deps:
    if re.split(r"[<>=!~ \[;]", dep)[0].lower() not in ("torch", "torchvision"):
        print(dep)
PYEOF
"$PY" -m pip download --dest "$DIR" --find-links "$DIR" "${target[@]}" -r "$DIR/requirements.txt" pytest

# torchvision of the machine's torch (0.(minor + 15)), for a machine that lacks it: no deps, so
# its torch requirement never pulls a torch wheel
minor=${TARGET_TORCH#2.}
"$PY" -m pip download --dest "$DIR" --no-deps "${target[@]}" "torchvision==0.$((minor + 15)).*" ||
    echo "gpu_wheels: no torchvision wheel for torch $TARGET_TORCH (fine where the machine has it)" >&2
if ls "$DIR" | grep -qiE '^(torch-|triton-|nvidia_)'; then
    echo "gpu_wheels: a torch wheel got in; remove it: the machine's torch must stay" >&2
    exit 1
fi
du -sh "$DIR"
echo "wheels for Python $TARGET_PYTHON in $DIR; on the GPU machine: scripts/gpu_check.sh --wheels $DIR OUT"
