#!/usr/bin/env bash
# The paper at laptop scale, on 2 CPU cores: Table III for ECG and EEG (the three variants,
# cross-validated, next to the paper's), Fig. 7 for ECG (aug 1, 2 and 4), learning curves
# across folds, per-class accuracy, bit-error curves of the three ECG variants with the
# 1T1R / 2T2R operating points, and claims.md (every checkable claim with its kind, test,
# n, interval and verdict), all in one folder:
#   experiments/paper_small.sh [OUT]
# The protocol is the paper's split (k-fold cross-validation, no separate test split; the
# last-epoch validation accuracy is reported) on seeds never used for tuning (docs/ecg_data.md,
# docs/eeg.md: seed 42 was). Sizes can be changed through the environment: ECG_AUGS (default
# 1,2,4), FOLDS (0,1,2,3,4), ECG_SEEDS (100,101: folds x 2 repeats), EEG_AUGS (1), EEG_SEEDS
# (100), ECG_EPOCHS (30), EEG_EPOCHS (10), DRAWS (10). Extra sweep options go in
# SWEEP_OPTIONS. Measured: docs/experiments.md, with the tables and claims.md it wrote.
# The sizes are checked before anything runs (one error line, exit status 2); a sweep with a
# failed job stops the script with the sweep's exit status.
set -euo pipefail
cd "$(dirname "$0")/.."
. experiments/_common.sh
ECG_AUGS=${ECG_AUGS:-1,2,4}
EEG_AUGS=${EEG_AUGS:-1}
FOLDS=${FOLDS:-0,1,2,3,4}
ECG_SEEDS=${ECG_SEEDS:-100,101}
EEG_SEEDS=${EEG_SEEDS:-100}
ECG_EPOCHS=${ECG_EPOCHS:-30}
EEG_EPOCHS=${EEG_EPOCHS:-10}
DRAWS=${DRAWS:-10}
refuse() { echo "error: $1=${!1@Q} is not allowed: expected $2" >&2; exit 2; }
[[ $ECG_AUGS =~ ^[1-9][0-9]*(,[1-9][0-9]*)*$ && ,$ECG_AUGS, == *,1,* ]] ||
    refuse ECG_AUGS "comma-separated integers >= 1 with 1 among them (the bit errors are of aug 1), e.g. 1,2,4"
[[ $EEG_AUGS =~ ^[1-9][0-9]*(,[1-9][0-9]*)*$ ]] ||
    refuse EEG_AUGS "comma-separated integers >= 1, e.g. 1"
n_folds=5  # data.folds, unless SWEEP_OPTIONS sets it
for option in ${SWEEP_OPTIONS:-}; do
    case $option in data.folds=*) n_folds=${option#data.folds=} ;; esac
done
[[ $n_folds =~ ^[0-9]+$ ]] || n_folds=5  # a bad data.folds is the sweep's to refuse
folds_allowed="comma-separated folds from 0 to $((n_folds - 1)) (data.folds=$n_folds), e.g. 0,1,2"
[[ $FOLDS =~ ^[0-9]+(,[0-9]+)*$ ]] || refuse FOLDS "$folds_allowed"
for fold in ${FOLDS//,/ }; do
    ((10#$fold < n_folds)) || refuse FOLDS "$folds_allowed"
done
for name in ECG_SEEDS EEG_SEEDS; do
    [[ ${!name} =~ ^[0-9]+(,[0-9]+)*$ ]] || refuse $name "comma-separated integer seeds, e.g. 100,101"
done
for name in ECG_EPOCHS EEG_EPOCHS DRAWS; do
    [[ ${!name} =~ ^[1-9][0-9]*$ ]] || refuse $name "an integer >= 1"
done
out=${1:-$LOGS/paper_small/$(date +%Y-%m-%d_%H-%M-%S)}
mkdir -p "$out"
# two jobs at a time, one core each (the parallel launcher: a process per job)
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
# the seed in each job's folder name, so the folds of every repeat stay apart
common=(hydra/launcher=parallel callbacks.rich_progress_bar=null trainer.enable_model_summary=false
        data.test_fraction=0
        'hydra.sweep.subdir=${hydra.job.num}_${model.name}_${binarize}_aug${aug}_fold${data.fold}_seed${seed}'
        ${SWEEP_OPTIONS:-})
sweep() {  # NAME OPTIONS...: one sweep; one that does not finish stops the script
    local name=$1
    shift
    "$PY" -m bnn_edge.train -m "$@" && return
    local status=$?
    echo "error: paper_small: the $name sweep did not finish (exit status $status);" \
        "nothing after it was run" >&2
    exit "$status"
}
t0=$SECONDS
echo "ECG: binarize x aug=$ECG_AUGS x folds $FOLDS x seeds $ECG_SEEDS, $ECG_EPOCHS epochs"
sweep ECG model=ecg binarize=none,classifier,full aug="$ECG_AUGS" data.fold="$FOLDS" \
    seed="$ECG_SEEDS" trainer.max_epochs="$ECG_EPOCHS" "${common[@]}" hydra.sweep.dir="$out/ecg"
echo "EEG: binarize x aug=$EEG_AUGS x folds $FOLDS x seeds $EEG_SEEDS, $EEG_EPOCHS epochs" \
    "($((SECONDS - t0)) s so far)"
sweep EEG model=eeg binarize=none,classifier,full aug="$EEG_AUGS" data.fold="$FOLDS" \
    seed="$EEG_SEEDS" trainer.max_epochs="$EEG_EPOCHS" "${common[@]}" hydra.sweep.dir="$out/eeg"
first_fold=${FOLDS%%,*} first_seed=${ECG_SEEDS%%,*}
echo "Bit errors of the three ECG variants at aug 1, fold $first_fold, seed $first_seed, last" \
    "epoch, on their validation fold ($((SECONDS - t0)) s so far)"
ckpts=$(ls -d "$out"/ecg/*_ecg_*_aug1_fold"$first_fold"_seed"$first_seed" |
        sed 's|$|/checkpoints/last.ckpt|' | paste -sd, -)
export OMP_NUM_THREADS=2 MKL_NUM_THREADS=2
"$PY" -m bnn_edge.evaluate "ckpt_path=[$ckpts]" split=val \
    "bit_errors.ber=[0,1e-6,1e-5,1e-4,1e-3,1e-2,1e-1]" bit_errors.real_format=[none,fp32] \
    bit_errors.draws="$DRAWS" hydra.run.dir="$out/bit_errors"
"$PY" -m bnn_edge.report "$out" claims=true
echo "paper_small: $((SECONDS - t0)) s; $out/table3.md, $out/fig7_ecg.png, $out/claims.md," \
    "$out/curves_ecg.png"
