"""Window arithmetic shared by the kernels, the ops and the models (no arrays, no backend).

A window of ``k`` values moved by ``stride`` over an axis of ``size`` values padded by ``pad``
on both sides (a convolution or a pooling) has

    OUT = (size + 2·pad − k) // stride + 1          positions (floor division)

along that axis, so an (N, C, H, W) input gives (N, ·, OH, OW). Examples::

    out_size(32, 3, 1, 1) == 32     3×3 conv, padding 1: the size is kept (bc_cifar10)
    out_size(32, 2, 2, 0) == 16     2×2 max-pool: the size halves
    out_size(227, 11, 4, 0) == 55   AlexNet's conv1

Everything here is plain integer arithmetic, so the reference kernels (kernels/reference.py),
the Numba kernels (kernels/cpu.py), the ops (functional/conv.py, functional/pooling.py) and
the layers (nn/layers.py) and the model builders (models/) can all use it without importing one another.
"""
from __future__ import annotations

__all__ = ["pair", "out_size", "out_hw", "fits", "pool_padding_ok", "trace"]


def pair(value, what: str = "value", owner: str = "window") -> tuple:
    """``value`` as a (vertical, horizontal) pair of ints: ``3 → (3, 3)``, ``(3, 1) → (3, 1)``.

    Raises ValueError naming ``owner`` and ``what`` when ``value`` is neither.
    """
    if isinstance(value, int):
        return (value, value)
    try:
        result = tuple(int(v) for v in value)
    except TypeError:
        result = ()
    if len(result) != 2:
        raise ValueError(f"{owner}: {what} must be an int or a pair, got {value!r}")
    return result


def out_size(size: int, k: int, stride: int = 1, pad: int = 0) -> int:
    """Output length along one axis: floor((size + 2·pad − k) / stride) + 1.

    Can be 0 or negative when the window does not fit; see :func:`fits`.
    """
    return (size + 2 * pad - k) // stride + 1


def out_hw(h: int, w: int, kh: int, kw: int, stride=(1, 1), pad=(0, 0)) -> tuple:
    """``(OH, OW)`` of a kh×kw window over an h×w plane; ``stride``, ``pad`` ints or pairs."""
    sh, sw = pair(stride, "stride")
    ph, pw = pair(pad, "padding")
    return out_size(h, kh, sh, ph), out_size(w, kw, sw, pw)


def fits(size: int, k: int, stride: int = 1, pad: int = 0) -> bool:
    """True when the window has at least one position: ``out_size(...) >= 1``."""
    return out_size(size, k, stride, pad) >= 1


def pool_padding_ok(k: int, pad: int) -> bool:
    """``2·pad <= k``: every pooling window holds at least one real value.

    With more padding a window at the border could hold padding only (−∞ for a max-pool),
    whose maximum is −∞. PyTorch refuses such padding too.
    """
    return 2 * pad <= k


def trace(size: int, windows) -> list:
    """Side lengths through a chain of windows: ``[size, after 1st, after 2nd, ...]``.

    ``windows`` is a list of ``(k, stride, pad)``. Used by the model builders to compute a
    flattened size, and to refuse an input that would shrink to nothing, without building
    anything::

        trace(28, [(5, 1, 2), (2, 2, 0), (5, 1, 0), (2, 2, 0)]) == [28, 28, 14, 10, 5]

    The chain stops at the first size below 1 (the later ones would mean nothing).
    """
    sizes = [int(size)]
    for k, stride, pad in windows:
        if sizes[-1] < 1:
            break
        sizes.append(out_size(sizes[-1], k, stride, pad))
    return sizes
