"""Which network was measured: a short fingerprint of a model's arrays.

Every result row (a sweep point, a walk point) carries the fingerprint of the network it
measured, so a row of an older or another network is never taken for a fresh one (rule 8 of
docs/design.md)::

    fingerprint = sha256( for each array, by name:  name NUL dtype NUL shape NUL nbytes LF
                                                      raw bytes (C order) )[:16 hex digits]

over the arrays of ``model.state_dict()``: weights, biases and batch-norm statistics, all of
them. Retraining changes the weights, so it changes the fingerprint; loading the same
checkpoint again gives the same one on any machine and backend (arrays are hashed on the host,
dtype with its byte order). 16 hex digits (64 bits) make an accidental match of two different
networks practically impossible.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

from .. import backend

__all__ = ["network_fingerprint", "checkpoint_fingerprint", "FINGERPRINT_DIGITS"]

FINGERPRINT_DIGITS = 16

_CACHE: dict = {}


def network_fingerprint(state_dict) -> str:
    """16 hex digits naming the network whose arrays are ``state_dict`` ({name: array}).

    Pass ``model.state_dict()`` (or the ``model_state`` of a checkpoint); arrays may live on
    the GPU. Two state dicts get the same fingerprint exactly when they have the same names,
    dtypes, shapes and bytes.
    """
    h = hashlib.sha256()
    for name in sorted(state_dict):
        a = backend.to_numpy(state_dict[name])
        shape = ",".join(str(int(d)) for d in a.shape)
        h.update(f"{name}\0{a.dtype.str}\0{shape}\0{a.nbytes}\n".encode("utf-8"))
        h.update(a.tobytes(order="C"))
    return h.hexdigest()[:FINGERPRINT_DIGITS]


def checkpoint_fingerprint(path) -> str:
    """:func:`network_fingerprint` of the model arrays in a checkpoint file (``checkpoint.npz``).

    Remembered per (file, size, modification time), so asking again for an unchanged file
    costs nothing; a checkpoint rewritten by a retraining is read again.
    """
    from .files import load_checkpoint
    path = Path(path)
    st = os.stat(path)
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns, st.st_ino)
    if key not in _CACHE:
        model_state, _, _ = load_checkpoint(path)
        _CACHE[key] = network_fingerprint(model_state)
    return _CACHE[key]
