"""The stand-in's array, :class:`DeviceArray`: a NumPy array that refuses to act as a host array.

How it crosses the device/host line (``unwrap`` / ``wrap``), how a NumPy function runs on it
(``call_numpy``: unwrap, call, count, wrap), its methods, indexing and operators. What it
refuses and what it counts: the package docstring.
"""
from __future__ import annotations

import operator

import numpy as np

from . import counters

# ---------------------------------------------------------------------------
# Crossing the device/host line.
# ---------------------------------------------------------------------------
_IMPLICIT = ("Implicit conversion to a NumPy array is not allowed (tinyproj stand-in device, "
             "as in CuPy): {what}. Bring values to the host explicitly with .get(), "
             "backend.to_numpy(a) or .item() — each one is a device→host sync.")


def implicit_error(what: str):
    return TypeError(_IMPLICIT.format(what=what))


def mixed_error(obj) -> TypeError:
    return TypeError(
        f"Unsupported type {type(obj)} in an operation on the stand-in device: device and host "
        "arrays do not mix (as in CuPy). Move the host array up with xp.asarray(a) or "
        "backend.to_device(a, 'gpu') (a host→device copy), or bring the device array down "
        "with .get().")


def unwrap(obj):
    """Device arrays → their NumPy payload; host arrays refused; containers recursed."""
    t = type(obj)
    if t is DeviceArray:
        return obj._a
    if t is np.ndarray or isinstance(obj, np.ndarray):
        raise mixed_error(obj)
    if t is list or t is tuple:
        return t(unwrap(o) for o in obj)
    return obj


def wrap(obj):
    """NumPy results → device arrays (NumPy scalars become 0-d arrays, as CuPy returns)."""
    if isinstance(obj, np.ndarray):
        return DeviceArray(obj)
    if isinstance(obj, np.generic):
        return DeviceArray(np.asarray(obj))
    if type(obj) is tuple:
        return tuple(wrap(o) for o in obj)
    if type(obj) is list:
        return [wrap(o) for o in obj]
    return obj


def has_array(obj) -> bool:
    if isinstance(obj, (np.ndarray, np.generic)):
        return True
    if type(obj) in (tuple, list):
        return any(has_array(o) for o in obj)
    return False


def is_view(result, inputs) -> bool:
    """True when ``result`` is a view into one of the input arrays (no kernel ran)."""
    if not isinstance(result, np.ndarray) or result.base is None:
        return False
    return any(isinstance(a, np.ndarray) and a.size and np.may_share_memory(result, a)
               for a in inputs)


def flat_arrays(args):
    for a in args:
        if isinstance(a, np.ndarray):
            yield a
        elif type(a) in (list, tuple):
            yield from flat_arrays(a)


# functions that allocate without filling (no kernel), and those that read a size back
_NO_LAUNCH = {"empty", "empty_like", "shape", "ndim", "size", "result_type", "can_cast",
              "may_share_memory", "shares_memory", "isscalar", "broadcast_shapes",
              "min_scalar_type", "promote_types", "iscomplexobj", "isrealobj"}
_SIZE_READ = {"nonzero", "argwhere", "flatnonzero", "unique", "compress", "extract",
              "unique_values", "unique_counts", "unique_inverse", "unique_all"}


def fresh(result):
    """NumPy scalars made 0-d arrays *before* wrapping, so that the array a device array holds
    is the very one a replayed recording rewrites (standin/graph.py)."""
    if isinstance(result, np.generic):
        return np.asarray(result)
    if type(result) in (tuple, list):
        return type(result)(fresh(r) for r in result)
    return result


def call_numpy(op: str, func, args, kwargs):
    """Run a NumPy function on device arrays: unwrap, call, count, wrap."""
    raw_args = unwrap(args)
    raw_kwargs = {k: unwrap(v) for k, v in kwargs.items()}
    result = fresh(func(*raw_args, **raw_kwargs))
    launched = False
    if op in _NO_LAUNCH:
        pass
    elif "out" in kwargs and kwargs["out"] is not None:
        launched = True
    elif result is None or has_array(result):
        launched = not is_view(result, list(flat_arrays(raw_args)))
    if launched:
        counters.launch(op)
        counters.record(lambda: func(*raw_args, **raw_kwargs), result)
    if op in _SIZE_READ:
        counters.sync(op=f"{op} (reads its output size back)")
    if "out" in kwargs and kwargs["out"] is not None:
        out = kwargs["out"]
        return out[0] if type(out) is tuple and len(out) == 1 else out
    return wrap(result)


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
        counters.sync(op=".get()")
        return self._a.copy()

    def item(self):
        """The one value as a Python number (a device→host sync)."""
        counters.sync(op=".item()")
        return self._a.item()

    def set(self, array):
        """Overwrite with the values of a host array (a host→device copy)."""
        counters.copy(op=".set(host array)")
        self._a[...] = np.asarray(array)

    # -- implicit transfers are refused -----------------------------------------------
    def __array__(self, dtype=None, copy=None):
        raise implicit_error("np.asarray / a NumPy function on a host array got a device array")

    def _scalar(self, kind, what):
        if counters.strict_at(2):                 # the frame that called float(), int(), bool()...
            raise implicit_error(what)
        if self._a.size != 1:
            raise TypeError(f"{what}: only a one-element array converts to a Python scalar "
                            f"(this one has shape {self._a.shape})")
        counters.sync(op=what)                           # CuPy's own behaviour: a hidden sync
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
        if counters.strict_at(1):
            raise implicit_error(f"formatting a device array with {spec!r}")
        counters.sync(op=f"formatting with {spec!r}")
        return format(self._a.item() if self._a.ndim == 0 else self._a, spec)

    def tolist(self):
        if counters.strict_at(1):
            raise implicit_error(".tolist()")
        counters.sync(op=".tolist()")
        return self._a.tolist()

    def __iter__(self):
        if counters.strict_at(1):
            raise implicit_error("iterating over a device array")
        counters.sync(op="iterating over a device array")                           # CuPy yields device views; each use syncs again
        return iter([DeviceArray(self._a[i]) if self._a.ndim > 1 else
                     DeviceArray(np.asarray(self._a[i])) for i in range(len(self._a))])

    __hash__ = None

    # -- NumPy protocols ----------------------------------------------------------------
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        raw = unwrap(inputs)
        raw_kwargs = {k: unwrap(v) for k, v in kwargs.items()}
        run = getattr(ufunc, method)
        result = fresh(run(*raw, **raw_kwargs))
        counters.launch(f"{ufunc.__name__}" + ("" if method == "__call__" else f".{method}"))
        counters.record(lambda: run(*raw, **raw_kwargs), result)
        if method == "at":
            return None
        out = kwargs.get("out")
        if out is not None:
            return out[0] if type(out) is tuple and len(out) == 1 else out
        return wrap(result)

    def __array_function__(self, func, types, args, kwargs):
        return call_numpy(func.__name__, func, args, kwargs)

    # -- copies ---------------------------------------------------------------------------
    def __copy__(self):
        return self.copy()

    def __deepcopy__(self, memo):
        return self.__copy__()

    def __reduce__(self):
        raise implicit_error("pickling a device array (bring it to the host with .get() first)")

    def copy(self, order="C"):
        counters.launch("copy")
        a, result = self._a, self._a.copy(order=order)
        counters.record(lambda: a, result)
        return DeviceArray(result)

    def astype(self, dtype, order="K", casting="unsafe", subok=True, copy=True):
        if not copy and np.dtype(dtype) == self._a.dtype:
            return self
        counters.launch("astype")
        a, result = self._a, self._a.astype(dtype, order=order, casting=casting, copy=True)
        counters.record(lambda: a, result)             # stored with the cast, as the kernel
        return DeviceArray(result)

    # -- indexing -------------------------------------------------------------------------
    def raw_key(self, key):
        """An index with device arrays unwrapped and host index arrays copied up (counted)."""
        if type(key) is tuple:
            return tuple(self._key_part(k) for k in key)
        return self._key_part(key)

    @staticmethod
    def _key_part(k):
        if type(k) is DeviceArray:
            return k._a
        if isinstance(k, np.ndarray) or type(k) is list:
            counters.copy(op="indexing with a host index array")     # a host index array goes up
            return np.asarray(k)
        return k

    def __getitem__(self, key):
        raw_key = self.raw_key(key)
        a = self._a
        result = a[raw_key]
        if _is_boolean_key(raw_key):
            counters.sync(op="boolean-mask indexing")           # the output size is read back
        if isinstance(result, np.ndarray) and is_view(result, [a]):
            return DeviceArray(result)
        if not isinstance(result, np.ndarray):
            result = np.asarray(result)           # one element: a 0-d view in CuPy, so a
            counters.record(lambda: a[raw_key], result)      # replay reads it again
            return DeviceArray(result)
        counters.launch("getitem")
        counters.record(lambda: a[raw_key], result)
        return DeviceArray(result)

    def __setitem__(self, key, value):
        raw_key = self.raw_key(key)
        if isinstance(value, np.ndarray):
            counters.copy(op="assigning host values (setitem)")     # host values go up first
        elif type(value) is DeviceArray:
            value = value._a
        elif type(value) in (list, tuple):
            value = unwrap(value)
        if _is_boolean_key(raw_key):
            counters.sync(op="boolean-mask assignment")
        a = self._a
        a[raw_key] = value
        counters.launch("setitem")
        counters.record(lambda: a.__setitem__(raw_key, value))

    # -- everything else a NumPy array has: methods run as counted kernels ---------------
    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        attr = getattr(self._a, name)
        if not callable(attr):
            return wrap(attr) if isinstance(attr, np.ndarray) else attr
        raw = self._a

        def method(*args, **kwargs):
            raw_args = unwrap(args)
            raw_kwargs = {k: unwrap(v) for k, v in kwargs.items()}
            result = fresh(attr(*raw_args, **raw_kwargs))
            if result is None or (has_array(result) and not is_view(result, [raw])):
                counters.launch(name)
                counters.record(lambda: attr(*raw_args, **raw_kwargs), result)
            if "out" in kwargs and kwargs["out"] is not None:
                return kwargs["out"]
            return wrap(result)
        return method


def _is_boolean_key(key) -> bool:
    parts = key if type(key) is tuple else (key,)
    return any(isinstance(k, np.ndarray) and k.dtype == bool for k in parts)


def _operator(ufunc, reflected=False, inplace=False):
    def op(self, other):
        if type(other) is DeviceArray:
            raw_other = other._a
        elif isinstance(other, np.ndarray):
            raise mixed_error(other)
        elif isinstance(other, (int, float, complex, bool, np.generic)):
            raw_other = other
        else:
            return NotImplemented         # e.g. a Tensor: its reflected operator runs
        counters.launch(ufunc.__name__)
        a = self._a
        if inplace:
            ufunc(a, raw_other, out=a)
            counters.record(lambda: ufunc(a, raw_other, out=a))
            return self
        if reflected:
            def run():
                return ufunc(raw_other, a)
        else:
            def run():
                return ufunc(a, raw_other)
        result = fresh(run())
        counters.record(run, result)
        return wrap(result)
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
        counters.launch(ufunc.__name__)
        a = self._a
        result = fresh(ufunc(a))
        counters.record(lambda: ufunc(a), result)
        return DeviceArray(result)
    return op


DeviceArray.__neg__ = _unary(np.negative)
DeviceArray.__pos__ = _unary(np.positive)
DeviceArray.__abs__ = _unary(np.absolute)
DeviceArray.__invert__ = _unary(np.invert)

ndarray = DeviceArray
"""``xp.ndarray`` — so that ``isinstance(a, xp.ndarray)`` works as with CuPy."""
