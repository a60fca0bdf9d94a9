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

    def forward(self, x):
        for module in self:
            x = module(x)
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


def _checked_module(module, position):
    if isinstance(module, Module):
        return module
    if isinstance(module, type) and issubclass(module, Module):
        raise TypeError(f"Sequential: argument {position} is the class {module.__name__}, not a "
                        f"module; write {module.__name__}(...) with parentheses")
    raise TypeError(f"Sequential: argument {position} is a {type(module).__name__}, not an "
                    "nn.Module")
