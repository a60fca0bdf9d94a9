"""CUDA graphs: capture one whole training step once, replay it for every minibatch.

What a graph is. On a GPU every array operation is a kernel launch that costs the host
some 5–20 µs of Python and driver work, however small the kernel. One ``bc_cifar10`` step is
about 120 launches (tests/test_budgets.py), so at width 0.25 the host, not the GPU, sets the
pace. CUDA can *record* the launches a stream receives (stream capture: nothing runs, each
launch becomes a node of a graph, its arguments copied in) and later *replay* the whole
recording with one call. A replay costs one launch's worth of host time, whatever the number
of kernels.

What it demands. A replay runs the recorded kernels with the recorded arguments on the
recorded memory. So

1. everything that changes from step to step must be **in device memory**, read by the
   kernels when they run, and moved by kernels inside the step — never a launch argument
   (frozen at capture) and never a value read back to the host (a read would happen once, at
   capture). Here: the learning rate and Adam's t and bias corrections
   (optim/device_scalars.py), Power's β (projections/power_device.py), the run's generator
   (kernels/generator.py: its (seed, stream) key moves on the device at every draw, and the
   stochastic projections take their Philox key from it, ``kernels.random_key``), the clip
   bounds (a device table updated in place), and the minibatch's position in the epoch's
   permutation (runs/device_batches.py). A projection parameter written ``U(..)`` other
   than Power's β (``stochm:gamma=U(..)``, ``addnorm:sigma=U(..)``, ``multunif:gamma=U(..)``)
   is drawn and read back to the host each step and handed to the kernels as a launch
   argument, so a step with one runs eagerly (``Projection.eager_reason()``, passed here as
   ``eager_reason``);
2. nothing in the step may **sync or copy** between host and device (CUDA refuses it while
   capturing); the stand-in checks that on the CPU (``standin.capture_check``);
3. the memory the step allocates must stay the step's: the capture allocates from a memory
   pool of its own, used for nothing else, so a replay never writes into memory that has since
   been handed to another array;
4. the shapes are the captured ones: a batch of another size (an epoch's last partial batch)
   runs eagerly; so does a step after ``backend.set_tf32`` changed the precision the graph
   was captured with (cuBLAS's math mode is recorded in it).

How to use it::

    step = graphs.capture_step(step_fn, optimizer=opt, prepare=write_scalars, mode="auto")
    for each minibatch:
        outputs = step(signature=batch_size)        # eager, captured, or replayed

``step_fn()`` runs one step on device state (no arguments: its inputs are device arrays that
it reads and advances itself) and returns a tuple of device arrays. ``prepare()`` runs before
every call, outside the captured region: it writes the per-step scalars the host decides (the
learning rate of a schedule, the clip bounds). ``optimizer`` gets its host-side bookkeeping
after each replay (``Optimizer.replayed``), since no Python runs inside one.

Modes (``tinyproj train --graph``): ``"on"`` capture on CuPy (the first ``warmup`` calls run
eagerly, so that the optimizer's state, the generator's key and the kernels exist before the
capture); on the stand-in the same, with the stand-in's own graph (``standin/graph.py``: the
step's kernels recorded with their arguments and replayed on the same memory, so a number
frozen at capture shows up on the CPU as a difference from eager steps) and every call
checked as if captured (a sync or a copy raises ``standin.CaptureError`` naming it); NumPy
runs eagerly; ``"auto"`` the same; ``"off"`` always eager. Where capture is impossible (not
CuPy, an op that syncs, a changed shape, an optimizer that fell back to per-parameter
updates, an ``eager_reason`` the caller knows before the first step) the step runs eagerly
and the reason is printed once (on NumPy under ``"auto"``: silently).
"""
from __future__ import annotations

from . import backend

__all__ = ["MODES", "StepGraph", "capture_step", "check_mode"]

MODES = ("auto", "on", "off")


def check_mode(mode: str) -> str:
    """``mode`` lower-cased if it is one of MODES, else a ValueError that lists them."""
    value = str(mode).strip().lower()
    if value not in MODES:
        raise ValueError(f"graph mode must be one of {', '.join(MODES)}; got {mode!r}")
    return value


class StepGraph:
    """One training step, run eagerly, or captured and replayed (CuPy, or the stand-in's
    recording); see the module docstring. ``kind`` says which: ``"eager"``, ``"warmup"``
    (before the capture), ``"cuda"`` or ``"standin"`` (replaying)."""

    def __init__(self, step_fn, optimizer=None, prepare=None, mode: str = "auto",
                 warmup: int = 2, log=print, name: str = "the training step",
                 eager_reason: str | None = None):
        self.step_fn, self.optimizer, self.prepare = step_fn, optimizer, prepare
        self.mode, self.warmup, self.log, self.name = check_mode(mode), int(warmup), log, name
        self.calls = 0
        self.replays = 0
        self.reasons = []                  # every fallback reason printed (once each)
        self._graph = self._outputs = self._stream = self._pool = None
        self._signature = None
        self._tf32 = False                 # whether TF32 was on when the step was captured
        backend_name = backend.name()
        self.device = backend_name
        if self.mode == "off":
            self.kind = "eager"
        elif backend_name in ("cupy", "standin"):
            self.kind = "warmup"
            if eager_reason:               # known before the first step: never captured, and
                self.kind = "eager"        # not checked as if captured (it syncs on purpose)
                self._fallback(eager_reason)
        else:
            self.kind = "eager"
            if self.mode == "on":
                self._fallback(f"the {backend_name} backend runs on the CPU: there is no "
                               "CUDA graph to capture (use --backend cupy)")

    # -- the one call ---------------------------------------------------------------------
    def __call__(self, signature=None):
        """Run one step; its outputs (device arrays, the caller's to keep)."""
        self.calls += 1
        if self.prepare is not None:
            self.prepare()
        if self.kind in ("cuda", "standin"):
            if signature != self._signature:
                self._fallback(f"a step with signature {signature!r} differs from the "
                               f"captured {self._signature!r} (e.g. an epoch's last, partial "
                               "batch): such steps run eagerly")
                return self._eager()
            if backend.tf32_enabled() != self._tf32:      # the graph holds cuBLAS's math mode
                self._fallback("TF32 was switched after the capture (the graph keeps the "
                               "precision it was captured with): the steps run eagerly "
                               "while it differs")
                return self._eager()
            return self._replay()
        if self.kind == "warmup":
            if self.calls > self.warmup:
                return self._capture(signature)
            return self._eager()
        return self.step_fn()

    def _eager(self):
        """The step run eagerly; on the stand-in checked as if captured (no sync, no copy)."""
        if self.device == "standin":
            from . import standin
            with standin.capture_check(self.name):
                return self.step_fn()
        return self.step_fn()

    @property
    def kernels_per_replay(self):
        """How many kernels one replay runs (the stand-in's recording); None before a capture
        and on CuPy (where the graph's nodes are CUDA's to count)."""
        return len(self._graph) if self.kind == "standin" else None

    def pool_bytes(self):
        """Bytes held by the captured graph's own memory pool (CuPy), else None."""
        return int(self._pool.total_bytes()) if self._pool is not None else None

    def _fallback(self, reason: str) -> None:
        if reason not in self.reasons:
            self.reasons.append(reason)
            self.log(f"CUDA graph: {reason}.")

    # -- CuPy: capture and replay ---------------------------------------------------------
    def _capture(self, signature):
        if self.device == "standin":
            from . import standin
            outputs, graph = standin.capture(self.step_fn, self.name)   # runs the step
            if self.optimizer is not None and not getattr(self.optimizer, "last_step_flat",
                                                          True):
                self.kind = "eager"
                self._fallback("the optimizer updated parameter by parameter (a parameter "
                               "without a gradient?), with launch arguments a graph would "
                               "freeze; every step runs eagerly")
                return outputs
            self._graph, self._outputs, self._signature = graph, outputs, signature
            self._tf32 = backend.tf32_enabled()
            self.kind = "standin"
            return tuple(o.copy() for o in outputs)
        import cupy
        counters = self.optimizer.host_counters() if self.optimizer is not None else None
        stream = cupy.cuda.Stream(non_blocking=True)
        pool = cupy.cuda.MemoryPool()      # the graph's own: nothing else allocates from it
        cupy.cuda.get_current_stream().synchronize()    # once, before the capture
        graph, outputs, error = None, None, None
        with cupy.cuda.using_allocator(pool.malloc), stream:
            stream.begin_capture()
            try:
                outputs = self.step_fn()
            except Exception as exc:       # e.g. cudaErrorStreamCaptureUnsupported: a sync
                error = exc
            try:
                graph = stream.end_capture()
            except Exception as exc:       # an invalidated capture ends with an error
                error = error or exc
        if error is None and self.optimizer is not None and \
                not getattr(self.optimizer, "last_step_flat", True):
            error = RuntimeError("the optimizer updated parameter by parameter (a parameter "
                                 "without a gradient?), with launch arguments a graph would "
                                 "freeze")
        if error is None:
            try:
                graph.launch(cupy.cuda.get_current_stream())   # this step, for real
            except Exception as exc:       # instantiation can fail at the first launch
                error = exc
        if error is not None:
            if counters is not None:
                self.optimizer.set_host_counters(counters)
            self.kind = "eager"
            self._fallback(f"capture of {self.name} failed ({type(error).__name__}: "
                           f"{str(error).splitlines()[0] if str(error) else ''}); every step "
                           "runs eagerly")
            return self.step_fn()
        self._graph, self._outputs, self._stream, self._pool = graph, outputs, stream, pool
        self._signature = signature
        self._tf32 = backend.tf32_enabled()
        self.kind = "cuda"
        return tuple(o.copy() for o in outputs)

    def _replay(self):
        if self.kind == "standin":
            self._graph.launch()
        else:
            import cupy
            self._graph.launch(cupy.cuda.get_current_stream())
        self.replays += 1
        if self.optimizer is not None:
            self.optimizer.replayed()
        return tuple(o.copy() for o in self._outputs)   # the graph overwrites its outputs


def capture_step(step_fn, optimizer=None, prepare=None, mode: str = "auto", warmup: int = 2,
                 log=print, name: str = "the training step",
                 eager_reason: str | None = None) -> StepGraph:
    """A :class:`StepGraph` for ``step_fn`` (see the module docstring). ``eager_reason``: why
    the step cannot be captured, when the caller knows before it runs (e.g.
    ``Projection.eager_reason()``); then every step runs eagerly and it is printed once."""
    return StepGraph(step_fn, optimizer=optimizer, prepare=prepare, mode=mode, warmup=warmup,
                     log=log, name=name, eager_reason=eager_reason)
