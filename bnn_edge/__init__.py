"""bnn_edge: binarized neural networks for biomedical signals, co-designed with RRAM hardware."""

import warnings

# Lightning's pytree helper trips a deprecation in newer torch; nothing a user can act on.
warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")

__version__ = "0.1.0"
