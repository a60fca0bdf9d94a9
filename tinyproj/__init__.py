"""tinyproj — a NumPy-first teaching framework for weight projections and noise robustness.

    import tinyproj as tp
    x = tp.tensor([[1.0, 2.0]], requires_grad=True)
    y = (x * x).sum(); y.backward(); x.grad   # → [[2., 4.]]
"""
from . import _memory, _threads, backend
from ._threads import limit as limit_threads
from .tensor import Function, Tensor, enable_grad, is_grad_enabled, no_grad, tensor

_threads.apply()            # idle BLAS/OpenMP threads sleep, whatever the import order
_memory.apply()             # freed arrays stay in the process for the next step (glibc)

__version__ = "0.1.0"


def manual_seed(seed: int) -> None:
    """Seed the global fallback generator (layers and dropout given no ``rng`` use it)."""
    backend.manual_seed(seed)


__all__ = ["Tensor", "Function", "tensor", "no_grad", "enable_grad", "is_grad_enabled",
           "backend", "manual_seed", "limit_threads", "__version__"]
