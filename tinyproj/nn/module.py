"""Module, Parameter and Sequential: the bookkeeping behind every layer and model.

A :class:`Module` owns three kinds of state, each registered simply by
assigning an attribute in ``__init__`` (the order of assignment is kept)::

    self.weight = Parameter(array)                  # learnable: optimizers update it
    self.block = Sequential(Linear(4, 8), ReLU())   # a sub-module
    self.register_buffer("running_mean", array)     # state that is not learned (BN statistics)

From those registries come ``parameters()``, ``named_parameters()`` (dotted
names such as ``"features.3.weight"``), ``modules()``, ``buffers()``,
``train()``/``eval()`` (recursive), ``state_dict()``/``load_state_dict()``
and a PyTorch-style ``repr`` tree.

Names. Every module knows its *qualified name*: the dotted path from the root
model (``"classifier.2"``), set when it is registered into a parent. The root's
qualified name is its class name. Layers put it in their error messages, so a
wrong shape says *which* layer refused it::

    ValueError: Linear 'classifier.2' (in_features=10, out_features=5, bias=False):
    expected input of shape (N, 10), got (32, 7)

Parameters are renamed along (``param.name == "classifier.2.weight"``), so a
Parameter printed on its own still says where it lives.
"""
from __future__ import annotations

from collections import OrderedDict, namedtuple

from .. import backend
from ..tensor import Tensor

__all__ = ["Parameter", "Module", "StateDictError", "LoadResult"]


class Parameter(Tensor):
    """A leaf Tensor that a Module registers as learnable (``requires_grad=True``).

    ``Parameter(array)`` keeps the array (no copy); ``Parameter(tensor)`` takes the
    tensor's data. The attribute ``name`` holds the dotted name inside the model once
    the parameter is registered (``"features.0.weight"``).
    """

    def __init__(self, data, requires_grad: bool = True, name: str | None = None):
        super().__init__(data, requires_grad=requires_grad, name=name)

    def __repr__(self):
        name = f"{self.name!r}, " if self.name else ""
        return f"Parameter({name}shape={tuple(self.shape)}, dtype={self.dtype})"


class StateDictError(RuntimeError):
    """``load_state_dict`` found missing/unexpected keys or shapes that do not match."""


LoadResult = namedtuple("LoadResult", ["missing_keys", "unexpected_keys"])
"""What ``load_state_dict(..., strict=False)`` skipped."""


def _check_name(owner, name, what):
    if not isinstance(name, str) or not name or "." in name:
        raise KeyError(f"{type(owner).__name__}: a {what} name must be a non-empty string "
                       f"without '.', got {name!r}")


def _to_array(value):
    return value.data if isinstance(value, Tensor) else value


def _indent(text: str, spaces: int = 2) -> str:
    lines = text.split("\n")
    return "\n".join([lines[0]] + [" " * spaces + line for line in lines[1:]])


class Module:
    """Base class of layers and models.

    Subclasses call ``super().__init__()`` first, assign their Parameters,
    sub-modules and buffers, and define ``forward``; ``module(x)`` calls
    ``module.forward(x)``.

    Attributes
        training : True in training mode (batch statistics, dropout on), False after
                   ``eval()``; switched for the whole tree by ``train(mode)``.
    """

    # -- registration -------------------------------------------------------
    def __init__(self):
        d = self.__dict__
        d["_parameters"] = OrderedDict()
        d["_buffers"] = OrderedDict()
        d["_non_persistent"] = set()
        d["_modules"] = OrderedDict()
        d["_path"] = ""           # dotted name inside the root; "" for the root itself
        d["training"] = True

    def _registries(self):
        d = self.__dict__
        if "_parameters" not in d:
            raise AttributeError(
                f"{type(self).__name__}.__init__ must call super().__init__() before assigning "
                "attributes, so that Parameters and sub-modules can be registered")
        return d["_parameters"], d["_buffers"], d["_modules"]

    def __setattr__(self, name, value):
        params, buffers, modules = self._registries()
        if isinstance(value, Parameter):
            self._forget(name)
            self.register_parameter(name, value)
        elif isinstance(value, Module):
            self._forget(name)
            self.add_module(name, value)
        elif name in params:
            if value is not None:
                raise TypeError(
                    f"{self.describe()}: cannot assign a {type(value).__name__} to the parameter "
                    f"{name!r}; assign an nn.Parameter, or change the values in place with "
                    f"`{name}.data[...] = new_values`")
            params[name] = None
        elif name in modules:
            if value is not None:
                raise TypeError(f"{self.describe()}: cannot assign a {type(value).__name__} to "
                                f"the sub-module {name!r}; assign an nn.Module (or None)")
            modules[name] = None
        elif name in buffers:
            buffers[name] = value
        else:
            object.__setattr__(self, name, value)

    def __getattr__(self, name):
        # only called when normal lookup fails: look in the registries
        d = self.__dict__
        for registry in ("_parameters", "_buffers", "_modules"):
            if name in d.get(registry, ()):
                return d[registry][name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute {name!r}")

    def __delattr__(self, name):
        if not self._forget(name):
            object.__delattr__(self, name)

    def _forget(self, name) -> bool:
        """Remove ``name`` from every registry and the instance dict; True if it was there."""
        found = False
        for registry in self._registries():
            if name in registry:
                del registry[name]
                found = True
        self.__dict__["_non_persistent"].discard(name)
        if name in self.__dict__ and not name.startswith("_"):
            del self.__dict__[name]
            found = True
        return found

    def _store(self, registry: dict, name: str, value) -> None:
        """``registry[name] = value``, ``name`` first forgotten wherever else it was (a plain
        attribute, another registry), so that a name belongs to one registry only."""
        if name not in registry:
            self._forget(name)
        registry[name] = value

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Register ``param`` (or None, meaning "this layer has no such parameter")."""
        _check_name(self, name, "parameter")
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"register_parameter({name!r}): expected an nn.Parameter or None, "
                            f"got {type(param).__name__}")
        params, _, _ = self._registries()
        self._store(params, name, param)
        if param is not None:
            param.name = self._child_path(name)

    def add_module(self, name: str, module: "Module | None") -> None:
        """Register a sub-module under ``name`` (what ``self.name = module`` does)."""
        _check_name(self, name, "module")
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"add_module({name!r}): expected an nn.Module, got "
                            f"{type(module).__name__}")
        _, _, modules = self._registries()
        self._store(modules, name, module)
        if module is not None:
            module._set_path(self._child_path(name))

    def register_buffer(self, name: str, array, persistent: bool = True) -> None:
        """Register an array that is state but not learned (e.g. BN's ``running_mean``).

        Buffers are saved by ``state_dict`` (unless ``persistent=False``), moved by
        ``to``, and readable as attributes (``self.running_mean``).
        """
        _check_name(self, name, "buffer")
        array = _to_array(array)
        if array is not None and not (hasattr(array, "shape") and hasattr(array, "dtype")):
            raise TypeError(f"register_buffer({name!r}): expected an array or None, got "
                            f"{type(array).__name__}")
        _, buffers, _ = self._registries()
        self._store(buffers, name, array)
        if persistent:
            self.__dict__["_non_persistent"].discard(name)
        else:
            self.__dict__["_non_persistent"].add(name)

    # -- names --------------------------------------------------------------
    def _child_path(self, name: str) -> str:
        return f"{self._path}.{name}" if self._path else name

    def _set_path(self, path: str) -> None:
        """Set this module's dotted name and rename everything below it."""
        self.__dict__["_path"] = path
        for name, param in self._parameters.items():
            if param is not None:
                param.name = self._child_path(name)
        for name, module in self._modules.items():
            if module is not None:
                module._set_path(self._child_path(name))

    @property
    def qualified_name(self) -> str:
        """The dotted name inside the root model (``"features.3"``); the root's class name."""
        return self._path or type(self).__name__

    def describe(self) -> str:
        """``"Linear 'classifier.2' (in_features=10, out_features=5, bias=False)"`` — for messages."""
        where = f" '{self._path}'" if self._path else ""
        extra = self.extra_repr()
        return f"{type(self).__name__}{where}" + (f" ({extra})" if extra else "")

    # -- traversal ----------------------------------------------------------
    def named_children(self) -> list:
        """``[(name, module)]`` of the direct sub-modules, in registration order."""
        return [(n, m) for n, m in self._modules.items() if m is not None]

    def children(self) -> list:
        return [m for _, m in self.named_children()]

    def named_modules(self, prefix: str = "") -> list:
        """``[(dotted_name, module)]`` of this module (name ``prefix``, "" by default) and all
        modules below it, depth first; a module reachable twice is listed once."""
        out, seen = [], set()

        def visit(module, name):
            if id(module) in seen:
                return
            seen.add(id(module))
            out.append((name, module))
            for child_name, child in module.named_children():
                visit(child, f"{name}.{child_name}" if name else child_name)

        visit(self, prefix)
        return out

    def modules(self) -> list:
        return [m for _, m in self.named_modules()]

    def named_parameters(self, prefix: str = "") -> list:
        """``[(dotted_name, Parameter)]``, e.g. ``("0.weight", p)``; a shared one is listed once."""
        out, seen = [], set()
        for mod_name, module in self.named_modules(prefix):
            for name, param in module._parameters.items():
                if param is not None and id(param) not in seen:
                    seen.add(id(param))
                    out.append((f"{mod_name}.{name}" if mod_name else name, param))
        return out

    def parameters(self) -> list:
        """All learnable Parameters (a list; pass it to an optimizer)."""
        return [p for _, p in self.named_parameters()]

    def num_parameters(self) -> int:
        """Total number of learnable scalars."""
        return sum(int(p.size) for p in self.parameters())

    def named_buffers(self, prefix: str = "") -> list:
        """``[(dotted_name, array)]`` of all buffers (e.g. ``"1.running_mean"``)."""
        out = []
        for mod_name, module in self.named_modules(prefix):
            for name, buf in module._buffers.items():
                if buf is not None:
                    out.append((f"{mod_name}.{name}" if mod_name else name, buf))
        return out

    def buffers(self) -> list:
        return [b for _, b in self.named_buffers()]

    def apply(self, fn) -> "Module":
        """Call ``fn(module)`` on every module of the tree (this one included); returns self."""
        for module in self.modules():
            fn(module)
        return self

    # -- modes, gradients, calls -------------------------------------------
    def train(self, mode: bool = True) -> "Module":
        """Set training mode (``mode=True``) or evaluation mode on the whole tree; returns self."""
        if not isinstance(mode, bool):
            raise TypeError(f"train(mode): mode must be True or False, got {mode!r} "
                            "(did you mean model.train() to start training?)")
        for module in self.modules():
            module.__dict__["training"] = mode
        return self

    def eval(self) -> "Module":
        """Evaluation mode for the whole tree (running BN statistics, no dropout); returns self."""
        return self.train(False)

    def zero_grad(self) -> None:
        """Forget the gradients of every parameter (``p.grad = None``)."""
        for p in self.parameters():
            p.grad = None

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def forward(self, *args, **kwargs):
        raise TypeError(f"{type(self).__name__} must define forward() (a Module subclass says what its call computes)")

    # -- state --------------------------------------------------------------
    def _state_entries(self) -> list:
        """``[(key, module, local_name, array)]`` for every parameter and persistent buffer."""
        entries = []
        for mod_name, module in self.named_modules():
            def key(name, mod_name=mod_name):
                return f"{mod_name}.{name}" if mod_name else name
            for name, param in module._parameters.items():
                if param is not None:
                    entries.append((key(name), module, name, param.data))
            for name, buf in module._buffers.items():
                if buf is not None and name not in module._non_persistent:
                    entries.append((key(name), module, name, buf))
        return entries

    def state_dict(self) -> "OrderedDict[str, object]":
        """Ordered ``{dotted_name: copy of the array}`` of all parameters and buffers.

        Order: each module's parameters, then its buffers, then its sub-modules (as
        PyTorch). The arrays are copies: training on afterwards does not change them.
        """
        return OrderedDict((key, arr.copy()) for key, _, _, arr in self._state_entries())

    def load_state_dict(self, state_dict, strict: bool = True) -> LoadResult:
        """Copy the arrays of ``state_dict`` into this model's parameters and buffers, in place.

        In place means the model's arrays keep their identity, so an optimizer built on
        ``model.parameters()`` keeps working. Values are moved to the device of the
        parameter they go into and cast to its dtype.

        strict=True: every key of the model must be present and no other key may be;
        otherwise :class:`StateDictError` lists the missing and unexpected keys.
        A shape mismatch is always an error (it names the key and both shapes).
        Nothing is copied unless everything checks out.
        Returns ``LoadResult(missing_keys, unexpected_keys)``.
        """
        if not hasattr(state_dict, "keys"):
            raise TypeError(f"load_state_dict: expected a dict of arrays, got "
                            f"{type(state_dict).__name__}")
        entries = self._state_entries()
        own_keys = {key for key, _, _, _ in entries}
        missing = [key for key, _, _, _ in entries if key not in state_dict]
        unexpected = [key for key in state_dict.keys() if key not in own_keys]
        errors, copies = [], []
        for key, module, name, target in entries:
            if key not in state_dict:
                continue
            source = _to_array(state_dict[key])
            if not hasattr(source, "shape"):
                source = backend.asarray(source)
            if tuple(source.shape) != tuple(target.shape):
                errors.append(f"size mismatch for {key!r} (the {name} of {module.describe()}): "
                              f"the state_dict has shape {tuple(source.shape)}, the model has "
                              f"shape {tuple(target.shape)}")
            else:
                copies.append((target, source))
        if strict and missing:
            errors.append(f"missing keys (in the model, not in the state_dict): {_listing(missing)}")
        if strict and unexpected:
            errors.append(f"unexpected keys (in the state_dict, not in the model): "
                          f"{_listing(unexpected)}")
        if errors:
            hint = ("Was the state_dict saved from a model built with the same arguments? "
                    "Pass strict=False to load only the matching keys." if (missing or unexpected)
                    else "Was the state_dict saved from a model built with the same arguments?")
            raise StateDictError(f"load_state_dict into {type(self).__name__}: "
                                 + "; ".join(errors) + f". {hint}")
        for target, source in copies:
            device = "gpu" if backend.is_gpu_array(target) else "cpu"
            target[...] = backend.to_device(source, device)
        return LoadResult(missing, unexpected)

    def to(self, device: str) -> "Module":
        """Move every parameter (and its gradient) and buffer to ``"cpu"`` or ``"gpu"``.

        Parameters keep their identity but get new arrays: build the optimizer *after*
        moving the model (its state arrays live on the device of the parameters).
        """
        for module in self.modules():
            for param in module._parameters.values():
                if param is not None:
                    param.data = backend.to_device(param.data, device)
                    if param.grad is not None:
                        param.grad = backend.to_device(param.grad, device)
            for name, buf in list(module._buffers.items()):
                if buf is not None:
                    module._buffers[name] = backend.to_device(buf, device)
        return self

    # -- printing -----------------------------------------------------------
    def extra_repr(self) -> str:
        """The part inside the parentheses of this module's repr (layers override it)."""
        return ""

    def __repr__(self):
        children = [f"({name}): {_indent(repr(module))}" for name, module in self.named_children()]
        head = f"{type(self).__name__}({self.extra_repr()}"
        if not children:
            return head + ")"
        return head + "\n  " + "\n  ".join(children) + "\n)"


def _listing(keys, limit: int = 10) -> str:
    shown = ", ".join(repr(k) for k in keys[:limit])
    return shown + (f" and {len(keys) - limit} more" if len(keys) > limit else "")
