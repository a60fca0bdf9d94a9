"""Parameters side by side in one flat buffer, so that one kernel launch updates them all.

On a GPU every array operation is a kernel launch costing tens of µs of host time, whatever
its size. Updating 27 parameters one by one costs 27 launches; when the parameters (and their
gradients, and the optimizer's state) live side by side in flat buffers, one launch of
``kernels.get("adam_update")`` over the whole buffer does the same arithmetic (issue 11). The
same layout lets Algorithm 1 project and clip every weight in one or two launches
(``kernels.get("sign_projection_segments")``, ``"clip_segments"``: algorithm1.py).

How (the choice: views, not pointer arrays). A :class:`FlatParams` copies the values of its
parameters into one 1-D buffer ``data`` and makes each parameter's ``p.data`` a view into it
(``data[a:b].reshape(shape)``), so every layer computes with the buffer without knowing it.
Each parameter also gets ``p.grad_slot``, a view into a second buffer ``grad``: the autograd
(tensor.py) writes the parameter's gradient there. A kernel taking a table of pointers would
need that table uploaded whenever an array moves — a host→device copy per step — so views it
is. Layout: the weights (ndim ≥ 2, the W_k of Algorithm 1) first, in the optimizer's order,
then the other parameters (biases, batch-norm γ, β)::

    data  = [ W_1 | W_2 | ... | W_N | γ_1 | β_1 | ... ]        offsets = [0, |W_1|, ...]

What can break the views, and what happens then. Code that assigns a new array to ``p.data``
(``Module.to``, a user) takes the parameter out of the buffer; :meth:`FlatParams.adopt` (run
by the optimizer before each step) notices (an identity check, no array work) and copies the
values back in. ``load_state_dict`` copies into the arrays in place, so the views survive.
Algorithm 1 swaps ``p.data`` for the projected weights and back to the very same view.
"""
from __future__ import annotations

import numpy as np

from .. import backend
from ..kernels import pieces

__all__ = ["FlatParams", "group_of", "PIECE", "SPLIT_ABOVE"]

PIECE = 1 << 16        # weights per piece when a GPU reduces α in pieces (kernels/pieces.py)
SPLIT_ABOVE = 1 << 20  # ... which it does when some weight tensor holds more than this


class FlatParams:
    """Parameters of one dtype on one device, as views into one flat buffer.

    Attributes
        params : the parameters, in the optimizer's order.
        order : positions in ``params`` in buffer order (weights first).
        data, grad : the flat (P,) buffers of the values and of the gradients.
        offsets : (S + 1,) int64 host array, parameter ``order[s]`` at [offsets[s], offsets[s+1]).
        n_weights : how many of the first parameters in buffer order are weights (ndim ≥ 2).
    """

    def __init__(self, params):
        params = list(params)
        first = params[0].data
        self.xp = backend.xp_of(first)
        self.dtype = first.dtype
        self.params = params
        self.order = sorted(range(len(params)), key=lambda i: params[i].data.ndim < 2)
        self.n_weights = sum(1 for i in self.order if params[i].data.ndim >= 2)
        sizes = [int(params[i].data.size) for i in self.order]
        self.offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        total = int(self.offsets[-1])
        self.data = self.xp.empty(total, dtype=self.dtype)
        self.grad = self.xp.zeros(total, dtype=self.dtype)
        self.views, self.grad_views = {}, {}
        for s, i in enumerate(self.order):
            a, b = int(self.offsets[s]), int(self.offsets[s + 1])
            shape = tuple(params[i].data.shape)
            self.views[i] = self.data[a:b].reshape(shape)
            self.grad_views[i] = self.grad[a:b].reshape(shape)
        self._device_tables = {}
        self._state = {}                          # key → (flat buffer, {i: view})
        self.step_scalars = None                  # optim/device_scalars.py, made on a device
        self.adopt(force=True)
        self.weight_offsets()                     # made now, not in the first step
        self._weight_pieces = self._make_weight_pieces()

    # -- keeping the parameters in the buffer --------------------------------------------
    def adopt(self, force: bool = False) -> None:
        """Make every ``p.data`` its view again (copying its values in) where it is not."""
        for i, p in enumerate(self.params):
            view = self.views[i]
            if force or p.data is not view:
                if tuple(p.data.shape) != tuple(view.shape):
                    raise ValueError(f"a parameter changed shape from {tuple(view.shape)} to "
                                     f"{tuple(p.data.shape)} after the optimizer was built")
                if not force and backend.is_gpu_array(p.data) != backend.is_gpu_array(view):
                    raise ValueError("a parameter moved to another device after the optimizer "
                                     "was built (model.to(...)?); build the optimizer after "
                                     "moving the model, or load its state_dict into a new one")
                view[...] = backend.to_device(p.data, "gpu" if backend.is_gpu_array(view)
                                              else "cpu")
                p.data = view
            p.grad_slot = self.grad_views[i]
            p.flat_params = self

    def gather_grads(self) -> bool:
        """Every gradient in ``grad``; False (nothing gathered) when some parameter has none.

        A gradient that autograd already wrote into its slot costs nothing; one set by hand
        (``p.grad = ...``) is copied in (one launch).
        """
        if any(p.grad is None for p in self.params):
            return False
        for i, p in enumerate(self.params):
            slot = self.grad_views[i]
            if p.grad is not slot:
                if tuple(p.grad.shape) != tuple(slot.shape):
                    return False                  # the optimizer reports the shape error
                slot[...] = backend.to_device(p.grad, "gpu" if backend.is_gpu_array(slot)
                                              else "cpu")
                p.grad = slot
        return True

    def state_buffer(self, key: str, states: list, fill=0.0):
        """The flat buffer of per-parameter state ``key`` (created filled with ``fill``), with
        ``states[i][key]`` made the view of parameter i (values already there copied in)."""
        if key not in self._state:
            buf = self.xp.full(self.data.size, fill, dtype=self.dtype)
            self._state[key] = (buf, {i: self.view_of(buf, s) for s, i in enumerate(self.order)})
        buf, views = self._state[key]
        for i in self.order:
            view = views[i]
            old = states[i].get(key)
            if old is not view:
                if old is not None:
                    view[...] = old
                states[i][key] = view
        return buf

    # -- what Algorithm 1 needs ------------------------------------------------------------
    def weights(self):
        """The flat buffer of the weights only (a view: the first ``n_weights`` tensors)."""
        return self.data[:int(self.offsets[self.n_weights])]

    def weight_params(self) -> list:
        """The weight parameters in buffer order."""
        return [self.params[i] for i in self.order[:self.n_weights]]

    def view_of(self, flat, position: int):
        """Tensor ``position`` (buffer order) of a flat array laid out like ``data``."""
        a, b = int(self.offsets[position]), int(self.offsets[position + 1])
        return flat[a:b].reshape(self.views[self.order[position]].shape)

    def device_table(self, key, values, dtype):
        """``values`` as an array on the buffer's device, kept under ``key`` and made again
        only when the values change (offsets once, clip bounds when a clip schedule moves
        them). Made with one fill launch per value, not a host→device copy: a step that
        changes the bounds still copies nothing up. On a device a change is written into the
        same array (only the values that changed), so a CUDA graph that captured a step
        reading it sees the new bounds at its next replay."""
        values = tuple(values.tolist() if hasattr(values, "tolist") else values)
        cached = self._device_tables.get(key)
        if cached is None or cached[0] != values:
            if self.xp is np:
                table = np.asarray(values, dtype=dtype)
            else:                                  # filled on the device: launches, no copy
                same_size = cached is not None and len(cached[0]) == len(values)
                table = cached[1] if same_size else self.xp.empty(len(values), dtype=dtype)
                old = cached[0] if same_size else (None,) * len(values)
                for i, v in enumerate(values):     # in place: a captured CUDA graph keeps
                    if old[i] != v:                # reading this very array (graphs.py)
                        table[i] = v
            cached = (values, table)
            self._device_tables[key] = cached
        return cached[1]

    def weight_offsets(self):
        """The offsets of the weight tensors within :meth:`weights`, on the device."""
        return self.device_table("weight_offsets", self.offsets[:self.n_weights + 1], np.int64)

    def weight_pieces(self):
        """``(fine, firsts)`` of ``kernels.pieces.tables`` for the weight tensors, on the
        device — how a GPU splits the reduction for each tensor's α (the ``pieces`` argument
        of the ``*_projection_segments`` kernels) — or None when no weight tensor holds more than
        SPLIT_ABOVE elements (then one thread block per tensor is enough, and a launch is
        saved). Made once, with the buffer: the layout never changes."""
        return self._weight_pieces

    def _make_weight_pieces(self):
        offsets = self.offsets[:self.n_weights + 1]
        if self.n_weights == 0 or int(np.diff(offsets).max()) <= SPLIT_ABOVE:
            return None
        fine, firsts = pieces.tables(offsets, PIECE)
        return (self.device_table("weight_pieces", fine, np.int64),
                self.device_table("weight_piece_firsts", firsts, np.int64))


def build_groups(params) -> list:
    """One :class:`FlatParams` per (dtype, device) among ``params``, in first-seen order."""
    groups = {}
    for p in params:
        key = (str(p.data.dtype), backend.is_gpu_array(p.data))
        groups.setdefault(key, []).append(p)
    return [FlatParams(ps) for ps in groups.values()]


def group_of(params):
    """The :class:`FlatParams` whose weights are exactly ``params`` (in buffer order), every
    one still its view; None otherwise (then the caller works layer by layer)."""
    params = list(params)
    if not params:
        return None
    group = getattr(params[0], "flat_params", None)
    if group is None or len(group.weight_params()) != len(params) or any(
            a is not b for a, b in zip(group.weight_params(), params)):
        return None
    for s in range(group.n_weights):
        i = group.order[s]
        if group.params[i].data is not group.views[i]:
            return None
    return group
