"""How a weight tensor is stored as bits, and the tensor read back with some bits flipped.

A codec turns a flat weight tensor into its stored form (``encode``), gives the tensor
the computation sees when the stored bits at given positions read wrong (``faulty``) and
the stored bits as integers for the fault models that depend on them (``words``).
Positions count bits over the stored form: bit ``b`` of stored word ``i`` is position
``i * bits + b`` (two's complement, bit 0 least significant).

- ``binary``: one bit per weight, the sign of the latent weight (sign(0) = +1);
- ``fp32``: the 32 bits of the IEEE-754 word (sign, exponent or mantissa);
- ``int8``: symmetric per-tensor quantization ``q = clamp(round(w / s), -127, 127)``,
  ``s = max|w| / 127``, the 8 bits of the two's-complement byte (int8 at rate 0 is the
  quantized model).
"""

from __future__ import annotations

import numpy as np
import torch

from bnn_edge.nn import binary_sign

# 1 << b as a two's-complement int32 (bit 31 is the sign bit: -2**31)
_POW2_INT32 = torch.tensor([1 << b for b in range(31)] + [-(1 << 31)], dtype=torch.int32)


def _word_mask(pos: torch.Tensor, words: int, bits: int, device) -> torch.Tensor:
    """An int32 mask per stored word with the bits at ``pos`` set."""
    word, bit = pos // bits, pos % bits
    mask = torch.zeros(words, dtype=torch.int32, device=device)
    # distinct bits of one word: adding their values is OR-ing them
    mask.index_add_(0, word, _POW2_INT32.to(device)[bit])
    return mask


class BinaryCodec:
    """One bit per weight: the sign."""

    name, bits = "binary", 1

    def encode(self, flat: torch.Tensor) -> tuple[torch.Tensor, float]:
        return binary_sign(flat), 1.0

    def words(self, stored: torch.Tensor) -> np.ndarray:
        """The stored bits as one unsigned integer per weight (1: +1), for the fault models."""
        return (stored > 0).to(torch.uint8).cpu().numpy()

    def faulty(self, stored: torch.Tensor, pos: torch.Tensor, scale: float,
               dtype: torch.dtype) -> torch.Tensor:
        signs = stored.clone()
        signs[pos] = -signs[pos]
        return signs


class Fp32Codec:
    """The IEEE-754 single-precision word of each weight."""

    name, bits = "fp32", 32

    def encode(self, flat: torch.Tensor) -> tuple[torch.Tensor, float]:
        if flat.dtype != torch.float32:
            raise ValueError(f"real_format=fp32 needs float32 weights, got {flat.dtype}")
        return flat.view(torch.int32), 1.0

    def words(self, stored):
        return stored.cpu().numpy().view(np.uint32)

    def faulty(self, stored, pos, scale, dtype):
        mask = _word_mask(pos, stored.numel(), self.bits, stored.device)
        return (stored ^ mask).view(torch.float32)


class Int8Codec:
    """Symmetric per-tensor int8 quantization, one byte per weight."""

    name, bits = "int8", 8

    def encode(self, flat: torch.Tensor) -> tuple[torch.Tensor, float]:
        max_abs = float(flat.abs().max()) if flat.numel() else 0.0
        scale = max_abs / 127 if max_abs > 0 else 1.0
        q = torch.clamp(torch.round(flat / scale), -127, 127).to(torch.int8)
        return q.view(torch.uint8), scale

    def words(self, stored):
        return stored.cpu().numpy()

    def faulty(self, stored, pos, scale, dtype):
        mask = _word_mask(pos, stored.numel(), self.bits, stored.device)
        flipped = (stored ^ mask.to(torch.uint8)).view(torch.int8)
        return (flipped.to(torch.float32) * scale).to(dtype)


#: how the non-binary conv/linear weights may be stored ("none": kept exact, not faulted)
REAL_FORMATS = ("none", "fp32", "int8")
CODECS = {"binary": BinaryCodec(), "fp32": Fp32Codec(), "int8": Int8Codec()}
