"""PyTorch's intra-op thread count, set for a block and restored afterwards.

Small networks on a 2-core CPU train faster with one thread than with two (the second core then steps the
environments or runs another job), so training, benchmarks and tests set it explicitly."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block with ``torch.set_num_threads(n)``; ``n = 0`` leaves PyTorch's setting alone."""
    if not n:
        yield
        return
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(previous)
