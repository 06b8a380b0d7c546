#!/usr/bin/env bash
# Fig. 7: the ECG sweep (binarize x aug x 5 folds, 1000 epochs), then the report.
# Extra arguments go to the sweep, e.g. a quick look:
#   experiments/fig7_ecg.sh trainer.max_epochs=10 aug=1,2 data.fold=0
set -euo pipefail
cd "$(dirname "$0")/.."
. experiments/_common.sh
"$PY" -m bnn_edge.train experiment=fig7_ecg "$@"
"$PY" -m bnn_edge.report "$(latest_multirun)"
