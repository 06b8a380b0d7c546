"""The packed engine: a binarized network's binary layers run as packed bits (XNOR-popcount).

Modules, imported by their full path (this package imports none, so importing one part
does not load the compiled kernel): ``fold`` (batch norm and sign folded into thresholds),
``product`` (one packed product as the kernels take it), ``kernels`` (the compiled
``_xnor`` or ``numpy_twin``), ``int8`` (the same products as exact int8 matrix products,
for large batches), ``layouts`` (where activations sit in packed words), ``weights``,
``stages``, ``planner`` and ``engine`` (:class:`~.engine.PackedNet`,
:class:`~.engine.PackedClassifier`), ``sweep`` (bit-error sweeps on the engine).
"""
