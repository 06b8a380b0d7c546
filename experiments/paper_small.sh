#!/usr/bin/env bash
# The paper at laptop scale, on 2 CPU cores in under an hour: Table III for ECG and EEG (the
# three variants, mean +- s.d. over folds, next to the paper's), Fig. 7 for ECG (aug 1, 2 and 4
# with error bars and the paper's points), bit-error curves of the three ECG variants with
# the 1T1R / 2T2R operating points, and claims.md (every checkable claim with a computed
# verdict), all in one folder:
#   experiments/paper_small.sh [OUT]
# Sizes can be changed through the environment: ECG_AUGS (default 1,2,4), FOLDS (0,1,2),
# EEG_AUGS (1), DRAWS (10). Extra sweep options go in SWEEP_OPTIONS. Measured: 42 min 55 s
# on 2 idle cores (docs/experiments.md, with the tables and claims.md it wrote).
set -euo pipefail
cd "$(dirname "$0")/.."
. experiments/_common.sh
out=${1:-$LOGS/paper_small/$(date +%Y-%m-%d_%H-%M-%S)}
mkdir -p "$out"
ECG_AUGS=${ECG_AUGS:-1,2,4}
EEG_AUGS=${EEG_AUGS:-1}
FOLDS=${FOLDS:-0,1,2}
DRAWS=${DRAWS:-10}
# two jobs at a time, one core each (joblib launcher)
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
common=(hydra/launcher=parallel callbacks.rich_progress_bar=null trainer.enable_model_summary=false
        ${SWEEP_OPTIONS:-})
t0=$SECONDS
echo "ECG: binarize x aug=$ECG_AUGS x folds $FOLDS"
"$PY" -m bnn_edge.train -m model=ecg binarize=none,classifier,full aug="$ECG_AUGS" \
    data.fold="$FOLDS" "${common[@]}" hydra.sweep.dir="$out/ecg"
echo "EEG: binarize x aug=$EEG_AUGS x folds $FOLDS ($((SECONDS - t0)) s so far)"
"$PY" -m bnn_edge.train -m model=eeg binarize=none,classifier,full aug="$EEG_AUGS" \
    data.fold="$FOLDS" "${common[@]}" hydra.sweep.dir="$out/eeg"
echo "Bit errors of the three ECG variants at aug 1, fold 0 ($((SECONDS - t0)) s so far)"
first_fold=${FOLDS%%,*}
ckpts=$(ls -d "$out"/ecg/*_ecg_*_aug1_fold"$first_fold" | paste -sd, -)
export OMP_NUM_THREADS=2 MKL_NUM_THREADS=2
"$PY" -m bnn_edge.evaluate "ckpt_path=[$ckpts]" "bit_errors.ber=[0,1e-6,1e-5,1e-4,1e-3,1e-2,1e-1]" \
    bit_errors.real_format=[none,fp32] bit_errors.draws="$DRAWS" hydra.run.dir="$out/bit_errors"
"$PY" -m bnn_edge.report "$out" claims=true
echo "paper_small: $((SECONDS - t0)) s; $out/table3.md, $out/fig7_ecg.png, $out/claims.md"
