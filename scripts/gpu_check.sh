#!/usr/bin/env bash
# scripts/gpu_check.sh [--dry] [--wheels DIR] OUT: a first visit to a GPU machine, in one go.
#
# For a machine lent for minutes, without network, whose Python has its own torch but not
# kdfair's other dependencies. Everything it writes goes under OUT (logs, the virtual
# environment, data, model store, benchmark figures, caches); OUT/summary.txt has one line per
# step, and the exit status is 0 only when every step passed. Steps, within an 8-minute budget
# (KDFAIR_CHECK_BUDGET seconds):
#   env       torch, CUDA device, capability, bf16 support, missing packages -> OUT/env.txt
#   install   a venv with the machine's packages (--system-site-packages) plus the wheels of
#             DIR (scripts/gpu_wheels.sh DIR prepares them), offline, torch pinned to the
#             machine's version so it is never replaced
#   gpu-tests pytest -m gpu (the CUDA tests)
#   smoke     kdfair train +debug=smoke_gpu twice: the second run must reuse every model;
#             then kdfair plan (each model's recorded numerics)
#   probe     benchmarks/run.py --probe: amp, channels_last, data on the device and compile,
#             each alone -> OUT/bench/PROBE_<device>.md (never the committed CPU figures)
#   demo      the demo for one seed, and its report
#   trifeature the paper's 100-epoch Trifeature schedule (ResNet-20 -> LeNet-5, T = 4, one
#             seed) if the time left allows, by an estimate from the probe; cut at the budget
#             otherwise (its resume checkpoint stays under OUT)
# --dry runs every step on this kind of machine (no GPU) at tiny sizes, in about a minute:
# the CPU where the GPU would be, the steps that need CUDA saying so. PYTHON picks the Python
# (default python3).
set -uo pipefail

DRY=0
WHEELS=${KDFAIR_WHEELS:-}
while [ $# -gt 1 ]; do
    case $1 in
        --dry) DRY=1; shift ;;
        --wheels) WHEELS=$2; shift 2 ;;
        *) break ;;
    esac
done
if [ $# -ne 1 ] || [ "${1#-}" != "$1" ]; then
    echo "usage: scripts/gpu_check.sh [--dry] [--wheels DIR] OUT" >&2
    exit 2
fi
REPO=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$1"
OUT=$(cd "$1" && pwd)
PY=${PYTHON:-python3}
BUDGET=${KDFAIR_CHECK_BUDGET:-480}
START=$(date +%s)
FAILED=0
: > "$OUT/summary.txt"

# Nothing outside OUT: bytecode, caches, temporary files, the outputs.
mkdir -p "$OUT/tmp" "$OUT/wheels-empty"
export PYTHONPYCACHEPREFIX=$OUT/pycache XDG_CACHE_HOME=$OUT/cache MPLCONFIGDIR=$OUT/mpl
export TORCHINDUCTOR_CACHE_DIR=$OUT/inductor TRITON_CACHE_DIR=$OUT/triton TMPDIR=$OUT/tmp
export HF_HOME=$OUT/hf HF_HUB_OFFLINE=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
export KDFAIR_DATA=$OUT/data KDFAIR_OUTPUTS=$OUT/outputs
export PYTHONPATH=$REPO/src${PYTHONPATH:+:$PYTHONPATH}
unset PYTHONWARNINGS

left() { echo $((BUDGET - ($(date +%s) - START))); }
note() { echo "$*" | tee -a "$OUT/summary.txt"; }

# step NAME COMMAND...: run it with its output in OUT/NAME.log, record ok/FAILED and seconds.
step() {
    local name=$1 t0 rc
    shift
    t0=$(date +%s)
    echo "== $name ($(left) s left)"
    "$@" > "$OUT/$name.log" 2>&1
    rc=$?
    if [ $rc -eq 0 ]; then
        note "$name: ok ($(($(date +%s) - t0)) s)"
    else
        FAILED=1
        note "$name: FAILED (exit $rc, $(($(date +%s) - t0)) s; see $name.log)"
        tail -n 5 "$OUT/$name.log" | sed 's/^/    /'
    fi
    return $rc
}

env_probe() {
    "$PY" - <<'PYEOF'
import importlib.util, platform, shutil, subprocess, sys
print("python", platform.python_version(), sys.executable)
import torch
print("torch", torch.__version__, "cuda build", torch.version.cuda)
print("cuda available", torch.cuda.is_available())
if torch.cuda.is_available():
    for i in range(torch.cuda.device_count()):
        print(f"cuda:{i}", torch.cuda.get_device_name(i),
              "capability", ".".join(map(str, torch.cuda.get_device_capability(i))))
    print("bf16 supported", torch.cuda.is_bf16_supported())
    print("cudnn", torch.backends.cudnn.version())
    free, total = torch.cuda.mem_get_info()
    print(f"memory free {free / 2**30:.1f} GiB of {total / 2**30:.1f} GiB")
names = ["torchvision", "hydra", "omegaconf", "fairlearn", "pandas", "scipy", "sklearn",
         "statsmodels", "matplotlib", "transformers", "datasets", "pytest", "pip"]
print("missing", " ".join(n for n in names if importlib.util.find_spec(n) is None) or "nothing")
if shutil.which("nvidia-smi"):
    print(subprocess.run(["nvidia-smi"], capture_output=True, text=True).stdout)
PYEOF
}

install() {
    local venv=$OUT/venv vpy=$OUT/venv/bin/python pip
    "$PY" -m venv --without-pip --system-site-packages "$venv" || return 1
    # A Python that is itself a virtual environment: its packages are this machine's.
    "$PY" - "$vpy" <<'PYEOF' || return 1
import site, subprocess, sys
if sys.prefix != sys.base_prefix:
    target = subprocess.run([sys.argv[1], "-c", "import site; print(site.getsitepackages()[0])"],
                            capture_output=True, text=True, check=True).stdout.strip()
    with open(f"{target}/machine-packages.pth", "w") as f:
        f.writelines(f"import site; site.addsitedir({p!r})\n" for p in site.getsitepackages())
PYEOF
    if "$PY" -m pip --version > /dev/null 2>&1; then
        pip=("$PY" -m pip --python "$vpy")
    else
        "$vpy" -m ensurepip --default-pip || return 1
        pip=("$vpy" -m pip)
    fi
    "$vpy" - "$REPO/pyproject.toml" "$OUT" <<'PYEOF' || return 1
import importlib.util, re, sys, tomllib
import torch
pyproject, out = sys.argv[1:]
pinned = {"torch": torch.__version__}  # never replaced: the machine's CUDA build
if importlib.util.find_spec("torchvision"):
    import torchvision
    pinned["torchvision"] = torchvision.__version__
with open(f"{out}/constraints.txt", "w") as f:
    f.writelines(f"{name}=={version}\n" for name, version in pinned.items())
with open(f"{out}/requirements.txt", "w") as f:
    for dep in tomllib.load(open(pyproject, "rb"))["project"]["dependencies"]:
        if re.split(r"[<>=!~ \[;]", dep)[0].lower() not in pinned:
            f.write(dep + "\n")
    f.write("pytest\n")
PYEOF
    local links=${WHEELS:-$OUT/wheels-empty}
    [ -d "$links" ] || { echo "no wheel folder $links: run scripts/gpu_wheels.sh $links first"; return 1; }
    "${pip[@]}" install --no-index --find-links "$links" -c "$OUT/constraints.txt" \
        -r "$OUT/requirements.txt" || return 1
    printf '#!/bin/sh\nexec "%s" -m kdfair "$@"\n' "$vpy" > "$venv/bin/kdfair"
    chmod +x "$venv/bin/kdfair"
    "$vpy" - "$OUT/constraints.txt" <<'PYEOF'
import sys
import fairlearn, hydra, omegaconf, torch
import kdfair
pinned = open(sys.argv[1]).read().split()[0].split("==")[1]
assert torch.__version__ == pinned, f"torch changed: {torch.__version__} != {pinned}"
print("kdfair", kdfair.__version__, "from", kdfair.__file__, "; torch", torch.__version__, "kept")
PYEOF
}

gpu_tests() {
    local files
    files=$(cd "$REPO" && grep -rl "pytest.mark.gpu" tests --include='*.py' | sort)
    echo "files with CUDA tests: $files"
    (cd "$REPO" && "$OUT/venv/bin/python" -m pytest -m gpu -p no:cacheprovider -q -rs $files)
}

smoke_twice() {
    kdfair train +debug=smoke_gpu > "$OUT/smoke-1.log" 2>&1 || { cat "$OUT/smoke-1.log"; return 1; }
    kdfair train +debug=smoke_gpu > "$OUT/smoke-2.log" 2>&1 || { cat "$OUT/smoke-2.log"; return 1; }
    local trained reused again
    trained=$(grep -c ": training into " "$OUT/smoke-1.log")
    reused=$(grep -c ": reusing " "$OUT/smoke-2.log")
    again=$(grep -c ": training into " "$OUT/smoke-2.log")
    echo "first run trained $trained models; second run reused $reused and trained $again"
    kdfair plan +debug=smoke_gpu
    [ "$trained" -ge 5 ] && [ "$again" -eq 0 ] && [ "$reused" -ge "$trained" ]
}

throughput() {
    local kind
    kind=$("$OUT/venv/bin/python" -c "import torch; print('cuda' if torch.cuda.is_available() else 'cpu')")
    if [ "$DRY" = 1 ]; then
        echo "dry: LeNet-5 -> LeNet-5 on 128 images, no torch.compile (minutes on a CPU)"
        "$OUT/venv/bin/python" "$REPO/benchmarks/run.py" --probe --small --images 128 \
            --epochs 2 --device cpu --out "$OUT/bench/PROBE_cpu-dry.md"
    else
        "$OUT/venv/bin/python" "$REPO/benchmarks/run.py" --probe --images "${PROBE_IMAGES:-10000}" \
            --epochs 3 --out "$OUT/bench/PROBE_$kind.md"
    fi
}

demo() {
    local size=() outputs=$OUT/demo
    if [ "$DRY" = 1 ]; then  # the smoke's models, reused: the command and the report exercised
        echo "dry: the demo at smoke size, its models those the smoke step stored"
        size=(+debug=smoke_gpu)
        outputs=$KDFAIR_OUTPUTS
    fi
    KDFAIR_OUTPUTS=$outputs kdfair train seed=0 "${size[@]}" || return 1
    KDFAIR_OUTPUTS=$outputs kdfair analyze "$outputs/demo" --resamples 200
}

trifeature() {
    local args=(+experiment=trifeature_resnet20_lenet5 distill.temperature=4 seed=0)
    if [ "$DRY" = 1 ]; then
        echo "dry: the schedule at smoke size (1 epoch each)"
        args+=(+debug=smoke_gpu)
    else
        # 3 models x 100 epochs x 20,000 images, at the probe's all-settings rate (a ResNet-56
        # teacher's: pessimistic for these models), plus a minute for start-up and predictions
        local need
        need=$("$OUT/venv/bin/python" - "$OUT/bench" <<'PYEOF'
import csv, glob, sys
rows = [r for f in glob.glob(f"{sys.argv[1]}/PROBE_*.csv") for r in csv.DictReader(open(f))]
rate = float(rows[-1]["images_per_s"]) if rows else 0.0
print(int(3 * 100 * 20_000 / rate) + 60 if rate else 10**6)
PYEOF
)
        echo "estimated ${need} s; $(left) s left"
        if [ "$need" -gt "$(($(left) - 15))" ]; then
            echo "skipped: not enough time left (needs ~${need} s). On a longer visit:"
            echo "  kdfair train ${args[*]}"
            return 0
        fi
    fi
    KDFAIR_OUTPUTS=$OUT/trifeature timeout "$(($(left) > 30 ? $(left) - 10 : 20))" \
        kdfair train "${args[@]}"
}

note "gpu_check $( [ "$DRY" = 1 ] && echo "--dry " )on $(hostname) at $(date -u +%FT%TZ); repo $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?')"
step env env_probe
cp "$OUT/env.log" "$OUT/env.txt"
if [ "$DRY" = 0 ] && ! grep -q "cuda available True" "$OUT/env.txt"; then
    note "no CUDA device visible: stopping (use --dry on a machine without a GPU)"
    exit 1
fi
[ "$DRY" = 1 ] && note "dry: no GPU; the CPU stands in, and the CUDA tests skip"
if ! step install install; then
    note "install failed: nothing else can run"
    exit 1
fi
export PATH=$OUT/venv/bin:$PATH
step gpu-tests gpu_tests
step smoke smoke_twice
step probe throughput
step demo demo
step trifeature trifeature
note "total $(($(date +%s) - START)) s of a ${BUDGET} s budget"
exit $FAILED
