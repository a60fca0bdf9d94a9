"""A strict CPU stand-in for the GPU: an array module that behaves like CuPy where it matters.

Rule 9 of docs/design.md: GPU code is checkable without a GPU. This module plays CuPy's part on
the CPU. Its arrays (:class:`DeviceArray`) hold a NumPy array but act as if it lived on a
device::

    from tinyproj import backend, standin
    backend.use("standin")                  # or TINYPROJ_BACKEND=standin for a whole process
    xp = backend.xp()                       # this module, used like cupy
    x = xp.asarray(host_images)             # a host→device copy (counted)
    y = xp.maximum(x, 0) * 2                # two kernel launches (counted)
    y.sum().item()                          # one launch and one device→host sync (counted)
    float(y.sum())                          # TypeError: implicit conversion to the host
    standin.counts()                        # {"launches": 3, "syncs": 1, "copies": 1}

What it refuses, like CuPy, or stricter where a hidden sync would go unnoticed:

* implicit conversion to the host: ``np.asarray(x)`` always (as CuPy); ``float(x)``,
  ``int(x)``, ``bool(x)`` (``if x.any():``), ``x.tolist()``, ``for v in x`` and formatting
  when tinyproj's own code does it (CuPy would sync silently; tests and lessons may, as
  counted syncs — see :func:`set_strict`) — TypeError; use the explicit ``x.get()``,
  ``xp.asnumpy(x)`` or ``x.item()`` (each counted as a sync);
* mixing device and host arrays in one operation (``x + numpy_array``,
  ``xp.where(mask, numpy_array, 0)``) — TypeError; Python and NumPy scalars are fine.

What it counts (:func:`counts`, :func:`reset`, :func:`counting`):

* ``launches`` — every array operation that runs a kernel: ufuncs and operators,
  reductions, matmul, indexing that gathers or scatters (not views), creation of filled
  arrays, copies, casts, random draws. One call counts one launch, whatever its size — the
  count is what a GPU pays per step in host overhead (tens of µs each);
* ``syncs`` — device→host transfers: ``.get()``, ``xp.asnumpy``, ``.item()``, boolean-mask
  indexing and ``nonzero``/``unique`` (their output size must be read back);
* ``copies`` — host→device transfers: ``xp.asarray(numpy_array)``, a host index array or
  host values in indexing.

``by_op()`` tells which operations made the launches. ``kernels.get(name, device_array)``
hands out the GPU kernels' host-compiled twins (``kernels/host.py``), one launch per call,
as CuPy arrays get the CUDA kernels themselves. Compared with real CuPy the counts
are a lower bound where CuPy runs one call as several kernels (``pad``, ``sort``).
"""
from __future__ import annotations

import contextlib
import functools
import operator
import sys
from collections import Counter

import numpy as np

__all__ = ["DeviceArray", "counts", "reset", "counting", "by_op", "set_strict", "asarray", "array",
           "asnumpy", "get_array_module", "ndarray", "random"]

_counts = {"launches": 0, "syncs": 0, "copies": 0}
_ops: Counter = Counter()
_mode = {"strict": "framework"}


def set_strict(strict) -> object:
    """Where ``float(x)``, ``int(x)``, ``bool(x)``, ``x.tolist()``, iteration and formatting
    of a device array raise instead of syncing silently:

    * ``"framework"`` (default): in tinyproj's own code (modules ``tinyproj.*``), where a
      hidden sync is a bug; elsewhere — tests, lessons, a user's script — they work as in
      CuPy, each counted as a sync;
    * ``True``: everywhere; ``False``: nowhere (to measure code as it is, as CuPy runs it).

    Returns the previous setting."""
    previous = _mode["strict"]
    _mode["strict"] = strict if strict == "framework" else bool(strict)
    return previous


def _strict_at(depth: int) -> bool:
    """Whether an implicit conversion made ``depth`` frames up from the caller is refused."""
    strict = _mode["strict"]
    if strict != "framework":
        return strict
    frame = sys._getframe(depth + 1)
    return str(frame.f_globals.get("__name__", "")).startswith("tinyproj.")


def counts() -> dict:
    """``{"launches", "syncs", "copies"}`` since the last :func:`reset` (a copy)."""
    return dict(_counts)


def by_op() -> dict:
    """Launches per operation name since the last :func:`reset`, most frequent first."""
    return dict(_ops.most_common())


def reset() -> None:
    """Set every counter to zero."""
    for key in _counts:
        _counts[key] = 0
    _ops.clear()


class _Counted(dict):
    """What :func:`counting` yields: filled with the counts when the block ends."""

    launches = property(lambda self: self["launches"])
    syncs = property(lambda self: self["syncs"])
    copies = property(lambda self: self["copies"])


@contextlib.contextmanager
def counting():
    """``with standin.counting() as c: ...`` — afterwards ``c.launches``, ``c.syncs``,
    ``c.copies`` and ``c.ops`` hold what the block did (the global counters keep running)."""
    before, ops_before = counts(), Counter(_ops)
    result = _Counted()
    try:
        yield result
    finally:
        after = counts()
        result.update({k: after[k] - before[k] for k in after})
        result.ops = dict((Counter(_ops) - ops_before).most_common())


def _launch(op: str, n: int = 1) -> None:
    _counts["launches"] += n
    _ops[op] += n


def _sync(n: int = 1) -> None:
    _counts["syncs"] += n


def _copy(n: int = 1) -> None:
    _counts["copies"] += n


# ---------------------------------------------------------------------------
# Crossing the device/host line.
# ---------------------------------------------------------------------------
_IMPLICIT = ("Implicit conversion to a NumPy array is not allowed (tinyproj stand-in device, "
             "as in CuPy): {what}. Bring values to the host explicitly with .get(), "
             "backend.to_numpy(a) or .item() — each one is a device→host sync.")


def _implicit(what: str):
    return TypeError(_IMPLICIT.format(what=what))


def _mixed(obj) -> TypeError:
    return TypeError(
        f"Unsupported type {type(obj)} in an operation on the stand-in device: device and host "
        "arrays do not mix (as in CuPy). Move the host array up with xp.asarray(a) or "
        "backend.to_device(a, 'gpu') (a host→device copy), or bring the device array down "
        "with .get().")


def _unwrap(obj):
    """Device arrays → their NumPy payload; host arrays refused; containers recursed."""
    t = type(obj)
    if t is DeviceArray:
        return obj._a
    if t is np.ndarray or isinstance(obj, np.ndarray):
        raise _mixed(obj)
    if t is list or t is tuple:
        return t(_unwrap(o) for o in obj)
    return obj


def _wrap(obj):
    """NumPy results → device arrays (NumPy scalars become 0-d arrays, as CuPy returns)."""
    if isinstance(obj, np.ndarray):
        return DeviceArray(obj)
    if isinstance(obj, np.generic):
        return DeviceArray(np.asarray(obj))
    if type(obj) is tuple:
        return tuple(_wrap(o) for o in obj)
    if type(obj) is list:
        return [_wrap(o) for o in obj]
    return obj


def _has_array(obj) -> bool:
    if isinstance(obj, (np.ndarray, np.generic)):
        return True
    if type(obj) in (tuple, list):
        return any(_has_array(o) for o in obj)
    return False


def _is_view(result, inputs) -> bool:
    """True when ``result`` is a view into one of the input arrays (no kernel ran)."""
    if not isinstance(result, np.ndarray) or result.base is None:
        return False
    return any(isinstance(a, np.ndarray) and a.size and np.may_share_memory(result, a)
               for a in inputs)


def _flat_arrays(args):
    for a in args:
        if isinstance(a, np.ndarray):
            yield a
        elif type(a) in (list, tuple):
            yield from _flat_arrays(a)


# functions that allocate without filling (no kernel), and those that read a size back
_NO_LAUNCH = {"empty", "empty_like", "shape", "ndim", "size", "result_type", "can_cast",
              "may_share_memory", "shares_memory", "isscalar", "broadcast_shapes",
              "min_scalar_type", "promote_types", "iscomplexobj", "isrealobj"}
_SIZE_READ = {"nonzero", "argwhere", "flatnonzero", "unique", "compress", "extract",
              "unique_values", "unique_counts", "unique_inverse", "unique_all"}


def _call(op: str, func, args, kwargs):
    """Run a NumPy function on device arrays: unwrap, call, count, wrap."""
    raw_args = _unwrap(args)
    raw_kwargs = {k: _unwrap(v) for k, v in kwargs.items()}
    result = func(*raw_args, **raw_kwargs)
    if op in _NO_LAUNCH:
        pass
    elif "out" in kwargs and kwargs["out"] is not None:
        _launch(op)
    elif result is None or _has_array(result):
        if not _is_view(result, list(_flat_arrays(raw_args))):
            _launch(op)
    if op in _SIZE_READ:
        _sync()
    if "out" in kwargs and kwargs["out"] is not None:
        out = kwargs["out"]
        return out[0] if type(out) is tuple and len(out) == 1 else out
    return _wrap(result)


class DeviceArray:
    """An array "on the device": a NumPy array that refuses to be used as a host array.

    Supports what CuPy arrays support: operators, ufuncs, reductions and methods, NumPy
    functions (dispatched through ``__array_function__``), indexing and views; ``.get()``
    brings a NumPy copy to the host (a counted sync).
    """

    __slots__ = ("_a",)
    __array_priority__ = 100

    def __init__(self, array: np.ndarray):
        self._a = array

    # -- metadata (no device work) ----------------------------------------------------
    shape = property(lambda self: self._a.shape)
    dtype = property(lambda self: self._a.dtype)
    ndim = property(lambda self: self._a.ndim)
    size = property(lambda self: self._a.size)
    strides = property(lambda self: self._a.strides)
    itemsize = property(lambda self: self._a.itemsize)
    nbytes = property(lambda self: self._a.nbytes)
    flags = property(lambda self: self._a.flags)
    T = property(lambda self: DeviceArray(self._a.T))
    device = "standin"

    def __len__(self):
        return len(self._a)

    def __repr__(self):
        return f"DeviceArray(shape={self._a.shape}, dtype={self._a.dtype}) (stand-in device)"

    __str__ = __repr__

    # -- explicit transfers -----------------------------------------------------------
    def get(self, stream=None, out=None):
        """A NumPy copy on the host (a device→host sync)."""
        _sync()
        return self._a.copy()

    def item(self):
        """The one value as a Python number (a device→host sync)."""
        _sync()
        return self._a.item()

    def set(self, array):
        """Overwrite with the values of a host array (a host→device copy)."""
        _copy()
        self._a[...] = np.asarray(array)

    # -- implicit transfers are refused -----------------------------------------------
    def __array__(self, dtype=None, copy=None):
        raise _implicit("np.asarray / a NumPy function on a host array got a device array")

    def _scalar(self, kind, what):
        if _strict_at(2):                 # the frame that called float(), int(), bool()...
            raise _implicit(what)
        if self._a.size != 1:
            raise TypeError(f"{what}: only a one-element array converts to a Python scalar "
                            f"(this one has shape {self._a.shape})")
        _sync()                           # CuPy's own behaviour: a hidden sync
        return kind(self._a.reshape(()).item() if kind is not operator.index else
                    self._a.reshape(())[()])

    def __float__(self):
        return self._scalar(float, "float(device array)")

    def __int__(self):
        return self._scalar(int, "int(device array)")

    def __index__(self):
        return self._scalar(operator.index, "a device array used as a Python index")

    def __complex__(self):
        return self._scalar(complex, "complex(device array)")

    def __bool__(self):
        return self._scalar(bool, "bool(device array), e.g. `if (a > 0).any():`")

    def __format__(self, spec):
        if not spec:
            return repr(self)
        if _strict_at(1):
            raise _implicit(f"formatting a device array with {spec!r}")
        _sync()
        return format(self._a.item() if self._a.ndim == 0 else self._a, spec)

    def tolist(self):
        if _strict_at(1):
            raise _implicit(".tolist()")
        _sync()
        return self._a.tolist()

    def __iter__(self):
        if _strict_at(1):
            raise _implicit("iterating over a device array")
        _sync()                           # CuPy yields device views; each use syncs again
        return iter([DeviceArray(self._a[i]) if self._a.ndim > 1 else
                     DeviceArray(np.asarray(self._a[i])) for i in range(len(self._a))])

    __hash__ = None

    # -- NumPy protocols ----------------------------------------------------------------
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        raw = _unwrap(inputs)
        raw_kwargs = {k: _unwrap(v) for k, v in kwargs.items()}
        result = getattr(ufunc, method)(*raw, **raw_kwargs)
        _launch(f"{ufunc.__name__}" + ("" if method == "__call__" else f".{method}"))
        if method == "at":
            return None
        out = kwargs.get("out")
        if out is not None:
            return out[0] if type(out) is tuple and len(out) == 1 else out
        return _wrap(result)

    def __array_function__(self, func, types, args, kwargs):
        return _call(func.__name__, func, args, kwargs)

    # -- copies ---------------------------------------------------------------------------
    def __copy__(self):
        _launch("copy")
        return DeviceArray(self._a.copy())

    def __deepcopy__(self, memo):
        return self.__copy__()

    def __reduce__(self):
        raise _implicit("pickling a device array (bring it to the host with .get() first)")

    def copy(self, order="C"):
        _launch("copy")
        return DeviceArray(self._a.copy(order=order))

    def astype(self, dtype, order="K", casting="unsafe", subok=True, copy=True):
        if not copy and np.dtype(dtype) == self._a.dtype:
            return self
        _launch("astype")
        return DeviceArray(self._a.astype(dtype, order=order, casting=casting, copy=True))

    # -- indexing -------------------------------------------------------------------------
    def _key(self, key):
        if type(key) is tuple:
            return tuple(self._key_part(k) for k in key)
        return self._key_part(key)

    @staticmethod
    def _key_part(k):
        if type(k) is DeviceArray:
            return k._a
        if isinstance(k, np.ndarray) or type(k) is list:
            _copy()                       # a host index array goes up first
            return np.asarray(k)
        return k

    def __getitem__(self, key):
        raw_key = self._key(key)
        result = self._a[raw_key]
        if _is_boolean_key(raw_key):
            _sync()                       # the output size is read back to the host
        if isinstance(result, np.ndarray) and _is_view(result, [self._a]):
            return DeviceArray(result)
        if not isinstance(result, np.ndarray):
            return DeviceArray(np.asarray(result))   # one element: a 0-d view in CuPy
        _launch("getitem")
        return DeviceArray(result)

    def __setitem__(self, key, value):
        raw_key = self._key(key)
        if isinstance(value, np.ndarray):
            _copy()                       # host values go up first
        elif type(value) is DeviceArray:
            value = value._a
        elif type(value) in (list, tuple):
            value = _unwrap(value)
        if _is_boolean_key(raw_key):
            _sync()
        self._a[raw_key] = value
        _launch("setitem")

    # -- everything else a NumPy array has: methods run as counted kernels ---------------
    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        attr = getattr(self._a, name)
        if not callable(attr):
            return _wrap(attr) if isinstance(attr, np.ndarray) else attr
        raw = self._a

        def method(*args, **kwargs):
            raw_args = _unwrap(args)
            raw_kwargs = {k: _unwrap(v) for k, v in kwargs.items()}
            result = attr(*raw_args, **raw_kwargs)
            if result is None or (_has_array(result) and not _is_view(result, [raw])):
                _launch(name)
            if "out" in kwargs and kwargs["out"] is not None:
                return kwargs["out"]
            return _wrap(result)
        return method


def _is_boolean_key(key) -> bool:
    parts = key if type(key) is tuple else (key,)
    return any(isinstance(k, np.ndarray) and k.dtype == bool for k in parts)


def _operator(ufunc, reflected=False, inplace=False):
    def op(self, other):
        if type(other) is DeviceArray:
            raw_other = other._a
        elif isinstance(other, np.ndarray):
            raise _mixed(other)
        elif isinstance(other, (int, float, complex, bool, np.generic)):
            raw_other = other
        else:
            return NotImplemented         # e.g. a Tensor: its reflected operator runs
        _launch(ufunc.__name__)
        if inplace:
            ufunc(self._a, raw_other, out=self._a)
            return self
        result = ufunc(raw_other, self._a) if reflected else ufunc(self._a, raw_other)
        return _wrap(result)
    return op


for _name, _uf in {"add": np.add, "sub": np.subtract, "mul": np.multiply,
                   "truediv": np.true_divide, "floordiv": np.floor_divide, "mod": np.remainder,
                   "pow": np.power, "matmul": np.matmul, "and": np.bitwise_and,
                   "or": np.bitwise_or, "xor": np.bitwise_xor, "lshift": np.left_shift,
                   "rshift": np.right_shift}.items():
    setattr(DeviceArray, f"__{_name}__", _operator(_uf))
    setattr(DeviceArray, f"__r{_name}__", _operator(_uf, reflected=True))
    setattr(DeviceArray, f"__i{_name}__", _operator(_uf, inplace=True))
for _name, _uf in {"eq": np.equal, "ne": np.not_equal, "lt": np.less, "le": np.less_equal,
                   "gt": np.greater, "ge": np.greater_equal}.items():
    setattr(DeviceArray, f"__{_name}__", _operator(_uf))


def _unary(ufunc):
    def op(self):
        _launch(ufunc.__name__)
        return DeviceArray(ufunc(self._a))
    return op


DeviceArray.__neg__ = _unary(np.negative)
DeviceArray.__pos__ = _unary(np.positive)
DeviceArray.__abs__ = _unary(np.absolute)
DeviceArray.__invert__ = _unary(np.invert)

ndarray = DeviceArray
"""``xp.ndarray`` — so that ``isinstance(a, xp.ndarray)`` works as with CuPy."""


# ---------------------------------------------------------------------------
# Module functions: ``xp.zeros``, ``xp.maximum``, ... (NumPy's, on device arrays).
# ---------------------------------------------------------------------------
def asarray(a, dtype=None, order=None):
    """A device array: device arrays stay (a cast is a launch); anything else is copied up."""
    if type(a) is DeviceArray:
        if dtype is None or np.dtype(dtype) == a.dtype:
            return a
        return a.astype(dtype)
    _copy()
    return DeviceArray(np.array(a, dtype=dtype, order=order or "K"))


def array(a, dtype=None, copy=True, order="K", ndmin=0):
    """Like ``cupy.array``: a new device array (from the host: a copy up)."""
    if type(a) is DeviceArray:
        _launch("copy")
        return DeviceArray(np.array(a._a, dtype=dtype, copy=True, order=order, ndmin=ndmin))
    _copy()
    return DeviceArray(np.array(a, dtype=dtype, order=order, ndmin=ndmin))


def ascontiguousarray(a, dtype=None):
    if type(a) is not DeviceArray:
        return asarray(np.ascontiguousarray(a, dtype=dtype))
    if a._a.flags.c_contiguous and (dtype is None or np.dtype(dtype) == a.dtype):
        return a
    _launch("ascontiguousarray")
    return DeviceArray(np.ascontiguousarray(a._a, dtype=dtype))


def asnumpy(a, stream=None, out=None):
    """A NumPy array on the host (a device→host sync for device arrays)."""
    if type(a) is DeviceArray:
        return a.get()
    return np.asarray(a)


def scatter_add(target, indices, values) -> None:
    """``target[indices] += values`` with repeats accumulated (``cupyx.scatter_add``): one
    launch; host index arrays are copied up first, as CuPy's indexing does."""
    if type(target) is not DeviceArray:
        raise _mixed(target)
    raw_values = values._a if type(values) is DeviceArray else _unwrap(values)
    np.add.at(target._a, target._key(indices), raw_values)
    _launch("scatter_add")


def get_array_module(*args):
    """This module when any argument is a device array, else numpy (like CuPy's)."""
    import sys
    return sys.modules[__name__] if any(type(a) is DeviceArray for a in args) else np


@functools.lru_cache(maxsize=None)
def _wrapped(name: str):
    target = getattr(np, name)
    if isinstance(target, type) or not callable(target):
        return target                     # dtypes, constants, np.newaxis: as they are

    @functools.wraps(target)
    def function(*args, **kwargs):
        return _call(name, target, args, kwargs)
    return function


def __getattr__(name: str):
    """Every other NumPy name, working on device arrays (``xp.exp``, ``xp.zeros``...)."""
    if name.startswith("__"):
        raise AttributeError(name)
    if not hasattr(np, name):
        raise AttributeError(f"the stand-in device module has no {name!r} (numpy has none)")
    return _wrapped(name)


# ---------------------------------------------------------------------------
# Kernels: what ``kernels.get(name, device_array)`` hands out.
# ---------------------------------------------------------------------------
def tinyproj_kernel(name: str):
    """The GPU kernel ``name`` for stand-in arrays: its host-compiled twin (``kernels/host.py``,
    the very per-element code of the CUDA kernel, built by the system C++ compiler), run as
    one counted launch — or None (then ``kernels.get`` hands out the reference kernel, whose
    array operations are counted one by one) when no C++ compiler is usable or
    ``TINYPROJ_STANDIN_KERNELS=reference`` asks for the reference path."""
    import os
    if os.environ.get("TINYPROJ_STANDIN_KERNELS", "host").strip().lower() == "reference":
        return None
    try:
        from .kernels import host
    except ImportError:
        return None
    if name not in host.NAMES or not host.available():
        return None
    kernel = host.get(name)
    from .kernels import reference

    @functools.wraps(kernel)
    def launch(*args, **kwargs):
        raw_args = _unwrap(args)
        raw_kwargs = {k: _unwrap(v) for k, v in kwargs.items()}
        try:
            result = kernel(*raw_args, **raw_kwargs)
        except TypeError:                 # a dtype the kernel does not take (float32/64 only)
            return getattr(reference, name)(*args, **kwargs)
        _launch(f"kernel.{name}")
        given = {}                        # an output the caller passed in comes back as itself
        for a in _device_arrays((args, kwargs)):
            given[id(a._a)] = a
        return _rewrap(result, given)
    return launch


def _device_arrays(obj):
    if type(obj) is DeviceArray:
        yield obj
    elif type(obj) in (list, tuple):
        for o in obj:
            yield from _device_arrays(o)
    elif type(obj) is dict:
        for o in obj.values():
            yield from _device_arrays(o)


def _rewrap(obj, given):
    """``_wrap``, except that arrays the caller handed in come back as the caller's objects."""
    if isinstance(obj, np.ndarray) and id(obj) in given:
        return given[id(obj)]
    if type(obj) is tuple:
        return tuple(_rewrap(o, given) for o in obj)
    return _wrap(obj)


# ---------------------------------------------------------------------------
# Random numbers: ``xp.random.default_rng(seed)`` like ``cupy.random.default_rng``.
# ---------------------------------------------------------------------------
class Generator:
    """A seeded generator on the stand-in device; every draw is a launch, results are
    device arrays (a single draw is a 0-d device array, as with CuPy)."""

    def __init__(self, seed=None):
        self._g = np.random.default_rng(seed)

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        attr = getattr(self._g, name)
        if not callable(attr):
            raise AttributeError(f"the stand-in generator has no public state ({name!r}); "
                                 "like CuPy's, its state lives on the device")

        def draw(*args, **kwargs):
            result = attr(*_unwrap(args), **{k: _unwrap(v) for k, v in kwargs.items()})
            _launch(f"random.{name}")
            if isinstance(result, (float, int, bool)):
                result = np.asarray(result)
            return _wrap(result)
        return draw

    def __repr__(self):
        return "standin.random.Generator"


class _Random:
    """``xp.random``: ``default_rng`` and ``Generator``."""

    Generator = Generator

    @staticmethod
    def default_rng(seed=None):
        if isinstance(seed, Generator):
            return seed
        return Generator(seed)


random = _Random()
