"""An independent float64 reading of a native export's classifier, straight from docs/export.md.

It shares no code with bnn_edge: the bits are unpacked to +-1 weights, d is a float64 matrix
product (exact for these integers), a hidden unit is +1 iff d >= threshold (d <= threshold
where flip), the scores are scale * d + offset. What the contract forbids is refused.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def read_classifier(folder: Path) -> list[dict]:
    """The classifier layers of ``folder`` in order: ``w`` (+-1 float64), then ``threshold``
    and ``flip`` (hidden) or ``scale`` and ``offset`` (last); ValueError on a broken file."""
    names = json.loads((Path(folder) / "manifest.json").read_text())["classifier_layers"]
    layers = []
    with np.load(Path(folder) / "model.npz", allow_pickle=False) as model:
        for k, name in enumerate(names):
            n = int(model[f"{name}.in_features"])
            bits = np.unpackbits(model[f"{name}.weight_bits"], axis=1, bitorder="little")
            if bits[:, n:].any():
                raise ValueError(f"{name}.weight_bits: padding bits set")
            layer = {"name": name, "w": bits[:, :n] * 2.0 - 1.0}
            keys = ("scale", "offset") if k == len(names) - 1 else ("threshold", "flip")
            for key in keys:
                value = model[f"{name}.{key}"]
                layer[key] = value.astype(bool if key == "flip" else np.float64)
                if key != "flip" and not np.isfinite(layer[key]).all():
                    raise ValueError(f"{name}.{key}: not finite")
            layers.append(layer)
    return layers


def run_classifier(layers: list[dict], x: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """The hidden +-1 outputs (int8, one array per hidden layer) and the float64 scores of
    +-1 inputs ``x`` (N, in_features)."""
    a = np.asarray(x, np.float64)
    hidden = []
    for layer in layers:
        d = a @ layer["w"].T
        if "scale" in layer:
            return hidden, layer["scale"] * d + layer["offset"]
        on = np.where(layer["flip"], d <= layer["threshold"], d >= layer["threshold"])
        a = np.where(on, 1.0, -1.0)
        hidden.append(a.astype(np.int8))
    raise ValueError("the last layer has no scale and offset")
