"""Energy, latency and area of a network on 2T2R in-memory arrays (docs/cost.md), in three
parts that import only downward (report > model > params):

- :mod:`.params`: the parameter set (:class:`HardwareParams`, conf/hardware/*.yaml), its
  checks and physical relations, the derived quantities;
- :mod:`.model`: the counting (layer shapes on the meta device, binary and real layer
  costs, totals, the variant comparison against its baseline, the report and its overflow
  check);
- :mod:`.report`: the output (CSV, Markdown, the chart, the parameters' provenance, the
  files written).
"""

from bnn_edge.hardware.cost.model import (
    build_from,
    check_real_options,
    check_results,
    cost_report,
    meta_shapes,
)
from bnn_edge.hardware.cost.params import HardwareParams
from bnn_edge.hardware.cost.report import (
    kind_of,
    markdown_variants,
    provenance,
    report_files,
    si,
    variant_rows,
    write_files,
)

__all__ = ["HardwareParams", "build_from", "check_real_options",
           "check_results", "cost_report", "kind_of", "markdown_variants", "meta_shapes",
           "provenance", "report_files", "si", "variant_rows", "write_files"]
