"""What the x axis of a fault sweep is called, on the evaluate figure and on W&B charts."""

from __future__ import annotations

#: x-axis titles of the swept fault-model parameters (others: the parameter's name)
AXIS_TITLES = {"ber": "bit error rate", "fraction": "fraction of stuck devices",
               "columns": "failed columns (sense amplifiers) per array, mean",
               "rows": "failed rows (word lines) per array, mean",
               "spares": "spare columns per array", "hours": "hours since programming",
               "ratio": "P(-1 reads +1) / P(+1 reads -1)", "data_bits": "data bits per codeword"}


def axis_title(parameter: str) -> str:
    """The x-axis title of a sweep of ``parameter`` (``ber``: the bit error rate)."""
    return AXIS_TITLES.get(parameter, parameter)
