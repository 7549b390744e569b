#!/usr/bin/env bash
# The six 1-epoch runs of issue 15's "numbers unchanged" check. $1: vae binary, $2: out dir.
# Prints: name test_elbo test_nll active_units params_sha16 state_sha16 n_params n_state.
# tests/numbers_unchanged.txt holds the numbers of main before the model-contract refactor
# (27327a0); a refactor that must not change numbers compares its output with it:
#   tests/numbers_unchanged.sh build/vae /tmp/after > /tmp/after.txt && diff tests/numbers_unchanged.txt /tmp/after.txt
# The numbers are those of one machine: -march=native and the kernels OpenBLAS picks for the
# CPU change the rounding (on a Zen 4 EPYC, main's mlp_bernoulli gives -125.87243725641221
# where the file, from the machine it was recorded on, says -125.8449730398178). On another
# machine, build main's binary there and compare the two outputs instead of the file.
set -euo pipefail
V=$1; O=$2; mkdir -p $O
export OPENBLAS_NUM_THREADS=1
common="--epochs 1 --seed 0 --iw-samples 100 --iw-examples 200 --quiet --json"
run() { name=$1; shift; rm -rf $O/$name; $V train $common --out $O/$name "$@" > $O/$name.json; echo "$name $(python3 -c "import json,sys;d=json.load(open('$O/$name.json'));print(repr(d['test_elbo']),repr(d['test_nll']),repr(d['active_units']))") $(python3 "$(dirname "$0")/ckpt_sum.py" $O/$name/last.ckpt)"; }
run mlp_bernoulli
run mlp_sigma_optimal --dataset fashion-mnist --likelihood gaussian --sigma optimal
run conv --arch conv --train-size 6000
run iaf2 --posterior iaf --iaf-steps 2 --hidden 500,500 --latent 32 --batch 100
run hier2 --model hierarchical --layers 32,16 --det-layers 256,128 --batchnorm true
run ladder5 --model ladder --batchnorm true --batch 256 --lr 2e-3 --adam-eps 1e-4 --warmup 5
