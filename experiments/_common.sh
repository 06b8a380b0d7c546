# Shared by the experiment scripts: the Python to use and the newest multirun folder.
PY=${PY:-python}
if [ -x .venv/bin/python ] && [ "$PY" = python ]; then PY=.venv/bin/python; fi
LOGS=${BNN_EDGE_LOG_DIR:-logs}
latest_multirun() { ls -1d "$LOGS"/train/multiruns/*/ 2>/dev/null | sort | tail -n 1; }
