"""bnn_edge.allocator: a freed large block is reused without faulting its pages in again."""

from __future__ import annotations

import subprocess
import sys

import pytest

# Allocates, fills and frees a 64 MB tensor 16 times, as training steps do, and prints the
# page faults of the last 4 times (the heap settles within the first few).
PROBE = """
import resource, sys, torch
if sys.argv[1] == "reuse":
    from bnn_edge.allocator import reuse_freed_memory
    assert reuse_freed_memory() and reuse_freed_memory()
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for step in range(16):
    if step == 12:
        before = faults()
    torch.empty(16 * 2**20).fill_(1)
    str(step)  # small Python objects in between, as in a training loop
print(faults() - before)
"""


def last_steps_faults(mode: str) -> int:
    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True,
                         check=True)
    return int(out.stdout.split()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_a_freed_large_tensor_is_reused_without_page_faults():
    pages = 4 * 64 * 2**20 // 4096
    assert last_steps_faults("default") > pages // 2  # mapped afresh: every page, every time
    assert last_steps_faults("reuse") < pages // 20  # already resident


# Five Adam steps of the full ECG network on fixed batches; prints the losses.
TRAIN = """
import sys, torch
from torch.nn import functional as F
from bnn_edge.nn import clip_binary_weights_
from bnn_edge.tasks import build_network
if sys.argv[1] == "reuse":
    from bnn_edge.allocator import reuse_freed_memory
    reuse_freed_memory()
torch.manual_seed(0)
net = build_network("ecg", binarize="full", aug=2).train()
opt = torch.optim.Adam(net.parameters(), lr=1e-3)
for step in range(5):
    x, y = torch.randn(16, 12, 750), torch.randint(0, 2, (16,))
    opt.zero_grad()
    loss = F.cross_entropy(net(x), y)
    loss.backward()
    opt.step()
    clip_binary_weights_(net)
    print(repr(loss.item()))
"""


def test_reusing_memory_leaves_the_training_numbers_as_they_were():
    losses = {mode: subprocess.run([sys.executable, "-c", TRAIN, mode], capture_output=True,
                                   text=True, check=True).stdout.split()
              for mode in ("default", "reuse")}
    assert len(losses["default"]) == 5 and len(set(losses["default"])) > 1
    assert losses["reuse"] == losses["default"]  # bit for bit
