#!/usr/bin/env bash
# Table IV: memory of the three networks with a binarized classifier (no training needed).
set -euo pipefail
cd "$(dirname "$0")/.."
. experiments/_common.sh
for model in eeg ecg mobilenet; do
  "$PY" -m bnn_edge.memory model=$model binarize=classifier "$@"
done
