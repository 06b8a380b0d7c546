#!/usr/bin/env bash
# Table III: every variant at the paper's augmentations with the paper's protocol (the
# presets' cv=all: ECG 5 folds x 5 repeats, EEG 5 folds, no test split, seeds from 100), for
# ECG and EEG (and MobileNet when IMAGENET_ROOT points at an ImageFolder copy of ImageNet),
# then one report over the sweeps with the claims. Extra arguments go to every sweep.
set -euo pipefail
cd "$(dirname "$0")/.."
. experiments/_common.sh
out=$LOGS/table3/$(date +%Y-%m-%d_%H-%M-%S)
mkdir -p "$out"
sweep() { "$PY" -m bnn_edge.train -m "$@" && cp -r "$(latest_multirun)" "$out/"; }
sweep experiment=paper_ecg binarize=none,classifier aug=1 "${@}"
sweep experiment=paper_ecg binarize=full aug=1,7 "${@}"
sweep experiment=paper_eeg binarize=none,classifier aug=1 "${@}"
sweep experiment=paper_eeg binarize=full aug=1,11 "${@}"
if [ -n "${IMAGENET_ROOT:-}" ]; then
  sweep experiment=paper_mobilenet binarize=none,classifier aug=1 data.root="$IMAGENET_ROOT" "${@}"
  sweep experiment=paper_mobilenet binarize=full aug=4 data.root="$IMAGENET_ROOT" "${@}"
fi
"$PY" -m bnn_edge.report "$out" claims=true
