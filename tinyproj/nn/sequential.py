"""Sequential: a Module that runs its children one after another."""
from __future__ import annotations

from .module import Module

__all__ = ["Sequential"]


class Sequential(Module):
    """Modules applied one after the other: ``Sequential(m0, m1, ...)(x) = ...m1(m0(x))``.

    The modules are registered as ``"0"``, ``"1"``, ... (so parameters are named
    ``"0.weight"``); ``Sequential(OrderedDict(name=module, ...))`` uses the given names.
    Indexable (``seq[0]``, ``seq[-1]``, ``seq[1:3]``), has ``len`` and iterates over
    its modules. A slice is a new Sequential that shares the layers (and keeps their
    names in the original model).
    """

    def __init__(self, *modules):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], dict):
            items = list(modules[0].items())
        else:
            items = [(str(i), m) for i, m in enumerate(modules)]
        for position, (name, module) in enumerate(items):
            self.add_module(name, _checked_module(module, position))

    def append(self, module: Module) -> "Sequential":
        """Add ``module`` at the end; returns self."""
        self.add_module(str(len(self)), _checked_module(module, len(self)))
        return self

    fuse_bn_relu = True
    """A batch norm directly followed by a ReLU runs as one kernel (``BatchNorm(x, relu=True)``):
    the same numbers (tests/test_nn.py checks it), fewer launches and passes. Set False (on the
    class or one model) for the plain path, one module after the other."""

    fuse_conv_pool = True
    """A bias-free Conv2d directly followed by a MaxPool2d runs as one op
    (``Conv2d(x, pool=...)``, functional/conv_pool.py): the same numbers bit for bit
    (tests/test_nn.py), the max-pool reading and writing the convolution's product in place
    on the CPU. Set False for the plain path."""

    def forward(self, x):
        modules = list(self._modules.values())
        i = 0
        while i < len(modules):
            module = modules[i]
            following = modules[i + 1] if i + 1 < len(modules) else None
            if self.fuse_bn_relu and _bn_then_relu(module, following):
                x = module(x, relu=True)         # batch norm and the ReLU after it, fused
                i += 2
                continue
            if self.fuse_conv_pool and _conv_then_pool(module, following):
                x = module(x, pool=following)    # the convolution and its max-pool, fused
                i += 2
                continue
            x = module(x)
            i += 1
        return x

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self.children())

    def __getitem__(self, index):
        items = list(self._modules.items())
        if isinstance(index, slice):
            view = Sequential()
            view._modules.update(items[index])   # no renaming: the layers keep their names
            return view
        try:
            return items[index][1]
        except IndexError:
            raise IndexError(f"Sequential index {index} is out of range: it has {len(items)} "
                             "modules") from None
        except TypeError:
            raise TypeError(f"Sequential indices must be integers or slices, not "
                            f"{type(index).__name__}") from None


def _bn_then_relu(module, following) -> bool:
    """Whether ``module`` is a batch norm and ``following`` a plain ReLU (exact types: a
    subclass may change what either computes)."""
    from .batchnorm import BatchNorm1d, BatchNorm2d
    from .layers import ReLU
    return type(module) in (BatchNorm1d, BatchNorm2d) and type(following) is ReLU


def _conv_then_pool(module, following) -> bool:
    """Whether ``module`` is a bias-free Conv2d and ``following`` a MaxPool2d (exact types)."""
    from .layers import Conv2d, MaxPool2d
    return type(module) is Conv2d and module.bias is None and type(following) is MaxPool2d


def _checked_module(module, position):
    if isinstance(module, Module):
        return module
    if isinstance(module, type) and issubclass(module, Module):
        raise TypeError(f"Sequential: argument {position} is the class {module.__name__}, not a "
                        f"module; write {module.__name__}(...) with parentheses")
    raise TypeError(f"Sequential: argument {position} is a {type(module).__name__}, not an "
                    "nn.Module")
