"""Gradient mode: whether new operations are recorded in the autograd graph.

    with tp.no_grad():          # evaluation, weight updates: no graph, no saved arrays
        ...
        with tp.enable_grad():  # record again inside
            ...

The mode is a stack, so the blocks nest. :class:`~tinyproj.function.Function` asks
:func:`is_grad_enabled` when it runs; the rest of autograd lives beside this file:
``tensor.py`` (Tensor and ``backward``, which re-exports these names) and
``function.py`` (the Function base class and the tensor constructors).
"""
from __future__ import annotations

import contextlib

__all__ = ["no_grad", "enable_grad", "is_grad_enabled"]

_grad_enabled = [True]


def is_grad_enabled() -> bool:
    """Whether new operations are recorded in the graph."""
    return _grad_enabled[-1]


@contextlib.contextmanager
def _grad_mode(enabled: bool):
    _grad_enabled.append(enabled)
    try:
        yield
    finally:
        _grad_enabled.pop()


def no_grad():
    """Context manager: operations inside record no graph (evaluation, weight updates)."""
    return _grad_mode(False)


def enable_grad():
    """Context manager: re-enable recording inside a ``no_grad`` block."""
    return _grad_mode(True)
