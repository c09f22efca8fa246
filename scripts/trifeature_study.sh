#!/usr/bin/env bash
# The Trifeature study of docs/results/trifeature.md: four protocol variants of trifeature_cpu over
# seeds 0-4 (the first trains the five teachers; every variant shares them through the store),
# then their comparison. Usage: bash scripts/trifeature_study.sh [OUT_DIR]   (run from the repo root
# with kdfair installed; KDFAIR_OUTPUTS and KDFAIR_DATA say where models and data go).
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
