#!/usr/bin/env bash
# The Trifeature study of docs/results/trifeature.md: four protocol variants of trifeature_cpu over
# seeds 0-4 (the first trains the five teachers; every variant shares them through the store),
# then their comparison; then the tuned variant (kdfair tune) against the default at the same
# temperatures. Usage: bash scripts/trifeature_study.sh [OUT_DIR]   (run from the repo root with
# kdfair installed; KDFAIR_OUTPUTS and KDFAIR_DATA say where models and data go).
set -euo pipefail
out=${1:-docs/results/trifeature}
outputs=${KDFAIR_OUTPUTS:-outputs}
seeds=seed=0,1,2,3,4
some='distill.temperature=[1,2,4,7,10,20,40]'
timed() { local start=$SECONDS; "$@"; echo "wall: $((SECONDS - start)) s: $*" >&2; }
timed kdfair train -m +experiment=trifeature_cpu 'distill.temperature=[1,2,3,4,5,6,7,8,9,10,20,30,40]' $seeds
timed kdfair train -m +experiment=trifeature_cpu "$some" $seeds distill.t_squared=true \
    student_optim.optimizer.lr=0.005 'paths.experiment=${paths.outputs}/trifeature_cpu_t2'
timed kdfair train -m +experiment=trifeature_cpu "$some" $seeds student_optim.optimizer.lr=0.1 \
    'paths.experiment=${paths.outputs}/trifeature_cpu_lr01'
timed kdfair train -m +experiment=trifeature_cpu "$some" $seeds student_optim.epochs=60 \
    'paths.experiment=${paths.outputs}/trifeature_cpu_long'
timed kdfair compare "$outputs/trifeature_cpu" "$outputs/trifeature_cpu_t2" \
    "$outputs/trifeature_cpu_lr01" "$outputs/trifeature_cpu_long" --out "$out"
# Tuned: each population at its validated lr (configs/tuned/trifeature_cpu.yaml is this tune's
# overlay), against the default variant at the same temperatures.
timed kdfair tune +experiment=trifeature_cpu dataset.val_fraction=0.2 "$some" \
    'tune.grid=[0.00447,0.00946,0.02,0.0423,0.0894,0.189,0.4]' tune.seeds=3
timed kdfair train -m +experiment=trifeature_cpu tuned=trifeature_cpu "$some" $seeds \
    'paths.experiment=${paths.outputs}/trifeature_cpu_tuned'
timed kdfair train -m +experiment=trifeature_cpu "$some" $seeds \
    'paths.experiment=${paths.outputs}/trifeature_cpu_fixed'
timed kdfair compare "$outputs/trifeature_cpu_fixed" "$outputs/trifeature_cpu_tuned" --out "$out/tuned"
# Is it the knowledge? Each method and control at its own validated lr (one tune seed each), then
# all five distilled populations at T = 1, 4, 10 in one folder, analysed together.
knowledge='distill.temperature=[1,4,10]'
tune1() { timed kdfair tune --roles distilled +experiment=trifeature_cpu dataset.val_fraction=0.2 \
    "$knowledge" tune.seeds=1 "$@"; }
tune1 distill.method=dkd 'tune.grid=[0.000211,0.000447,0.000946,0.00211,0.00447,0.00946]'
tune1 distill.control=smoothing 'tune.grid=[0.00946,0.02,0.0423,0.0894,0.189]'
tune1 distill.control=shuffled 'tune.grid=[0.00946,0.02,0.0423,0.0894,0.189]'
tune1 distill.method=at 'tune.grid=[0.00946,0.02,0.0423,0.0894,0.189]'
study() { timed kdfair train -m +experiment=trifeature_cpu "$knowledge" $seeds \
    'paths.experiment=${paths.outputs}/trifeature_cpu_knowledge' "$@"; }
study tuned=trifeature_cpu
for v in method=dkd control=smoothing control=shuffled method=at; do
  study "distill.$v" "tuned=$outputs/trifeature_cpu/tune_${v#*=}/tuned.yaml"
done
timed kdfair analyze "$outputs/trifeature_cpu_knowledge"
