"""Where ECG trials come from: a registry of sources, synthetic one among four.

Every source has ``name``, ``labelled``, ``group_by``, ``windowed``, ``settings()`` (its
part of the cache key), ``describe()``, ``build(task)`` (the arrays and a record of what was
read), ``origin(seed)`` (what an error about freshly built trials names: the folder, or the
generator's options) and ``info(meta, task)`` (its fields of ``data.json``);
``from_options(**options)`` takes the data module's options it needs.
"""

from bnn_edge.data.ecg.sources.challenge import ChallengeSource
from bnn_edge.data.ecg.sources.ptbxl import PTBXLSource
from bnn_edge.data.ecg.sources.synthetic import SyntheticSource
from bnn_edge.data.ecg.sources.wfdb import WFDBSource

SOURCES = {"synthetic": SyntheticSource, "ptbxl": PTBXLSource, "challenge": ChallengeSource,
           "wfdb": WFDBSource}

__all__ = ["SOURCES", "ChallengeSource", "PTBXLSource", "SyntheticSource", "WFDBSource"]
