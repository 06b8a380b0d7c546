"""Hardware side of the project: RRAM device statistics, memory accounting, binary export.

Modules are imported by their full path (``bnn_edge.hardware.device`` for the 1T1R/2T2R
bit-error model), so importing one does not load the others.
"""
