"""Projection objects, the registry of Table 1 rows and the spec parser (``"power:beta=U(0,2)"``)."""
from __future__ import annotations

import math
import re

from .. import backend
from .table1 import (rng_or_global, addnorm, multunif, none, power, round, sign, stoch, stochm,
                     stochm3, stochm_alpha, stochm_literal)

__all__ = ["Uniform", "Projection", "REGISTRY", "available", "parse"]


def _fmt(x: float) -> str:
    """A float written short but exactly: 0.5 -> '0.5', 2.0 -> '2', 1e-05 -> '1e-05'."""
    text = repr(float(x))
    return text[:-2] if text.endswith(".0") else text


class Uniform:
    """A random parameter value: drawn from U(low, high) each time it is sampled.

    Written ``U(low,high)`` in a spec, e.g. ``power:beta=U(0,2)`` (Tr-Power-C).

    On a GPU only Power's β is drawn and kept on the device (projections/power_device.py).
    Every other ``U(..)`` — ``stochm:gamma=U(..)``, ``addnorm:sigma=U(..)``,
    ``multunif:gamma=U(..)`` — is drawn by :meth:`draw` and read back as a Python float, which
    the projection's kernel then takes as a launch argument: one device→host sync per
    minibatch, and a value a CUDA graph would freeze at capture. A training step with such a
    spec therefore runs eagerly on a GPU (:meth:`Projection.eager_reason` says why, and
    tinyproj/graphs.py prints it once).
    """

    def __init__(self, low, high):
        self.low, self.high = float(low), float(high)
        if not (math.isfinite(self.low) and math.isfinite(self.high) and self.low <= self.high):
            raise ValueError(f"U(low, high) needs finite low <= high; got U({low}, {high})")

    def draw(self, rng) -> float:
        """One value from U(low, high), as a Python float. On a device generator it is drawn
        there and read back: an explicit sync, one per minibatch, which is why a step that
        draws here cannot be captured as a CUDA graph (see the class docstring)."""
        return float(backend.to_numpy(rng_or_global(rng).uniform(self.low, self.high, 1))[0])

    def __str__(self):
        return f"U({_fmt(self.low)},{_fmt(self.high)})"

    def __repr__(self):
        return f"Uniform({_fmt(self.low)}, {_fmt(self.high)})"

    def __eq__(self, other):
        return isinstance(other, Uniform) and (self.low, self.high) == (other.low, other.high)

    def __hash__(self):
        return hash(("Uniform", self.low, self.high))


class _Param:
    """One parameter of a registered projection: its name, rule and the rule's check."""

    def __init__(self, name, rule, ok):
        self.name, self.rule, self.ok = name, rule, ok


# (projection, parameter) pairs whose U(..) a device draws and keeps (power_device.sample)
DEVICE_DRAWN = {("power", "beta")}

_BETA = _Param("beta", "beta >= 0", lambda v: v >= 0)
_GAMMA = _Param("gamma", "0 < gamma <= 1", lambda v: 0 < v <= 1)
_SIGMA = _Param("sigma", "sigma >= 0", lambda v: v >= 0)


class _Entry:
    """One row of the registry: the function, its parameters and what the paper says."""

    def __init__(self, function, params, stochastic, use, states):
        self.function = function
        self.params = tuple(params)       # _Param objects, in call order after w
        self.stochastic = stochastic      # True when applying it draws random numbers
        self.use = use                    # how the paper uses it: "train", "test", "train, test"
        self.states = states              # allowed states, as in Table 1

    def usage(self, name) -> str:
        """``name`` or ``name:param=...`` followed by the rules, for error messages."""
        if not self.params:
            return name
        spec = name + ":" + ",".join(f"{p.name}=<{p.name}>" for p in self.params)
        return f"{spec}  ({'; '.join(p.rule for p in self.params)})"


REGISTRY = {
    "sign": _Entry(sign, [], False, "train, test", "{-alpha, +alpha}"),
    "round": _Entry(round, [], False, "train, test", "{-alpha, 0, +alpha}"),
    "none": _Entry(none, [], False, "train, test", "R"),
    "power": _Entry(power, [_BETA], False, "train, test", "[-alpha, +alpha]"),
    "stoch": _Entry(stoch, [], True, "train", "{-alpha, +alpha}"),
    "stochm": _Entry(stochm, [_GAMMA], True, "train", "[-alpha/gamma, +alpha/gamma]"),
    "stochm3": _Entry(stochm3, [_GAMMA], True, "train", "[-alpha/gamma, +alpha/gamma] and 0"),
    "stochm_literal": _Entry(stochm_literal, [_GAMMA], True, "(lesson only)",
                             "[-alpha/gamma, +alpha/gamma]"),
    "stochm_alpha": _Entry(stochm_alpha, [_GAMMA], True, "train (a reading)",
                           "[-alpha/gamma, -gamma*alpha] and [gamma*alpha, alpha/gamma]"),
    "addnorm": _Entry(addnorm, [_SIGMA], True, "test", "R"),
    "multunif": _Entry(multunif, [_GAMMA], True, "test", "[-alpha/gamma, +alpha/gamma]"),
}
"""name -> entry (``.function``, ``.params``, ``.stochastic``, ``.use``, ``.states``).

No parameter has a default: a spec always names its values (``stochm:gamma=0.5``), so
a spec stored in a run's config.json says everything about the projection.
"""


def available() -> list:
    """The valid specs with their parameter rules, one string per projection.

    e.g. ``['sign', 'round', 'none', 'power:beta=<beta>  (beta >= 0)', ...]``.
    Every numeric parameter may also be written ``U(low,high)`` to draw it afresh for
    every minibatch (see :meth:`Projection.sample`).
    """
    return [entry.usage(name) for name, entry in REGISTRY.items()]


def _valid_specs_text() -> str:
    lines = "\n".join("  " + line for line in available())
    return (f"Valid projections:\n{lines}\n"
            "Any parameter may be U(low,high) to draw it afresh each minibatch, "
            "e.g. 'power:beta=U(0,2)'.")


class Projection:
    """One projection of Table 1 with its parameters fixed (or drawn per minibatch).

    Build one with :func:`parse` (``parse("stochm:gamma=0.5")``) or directly
    (``Projection("stochm", gamma=0.5)``; ``Projection("power", beta=Uniform(0, 2))``).

    Attributes:
        name        the row of Table 1, e.g. ``"stochm"``.
        params      ``{param: value}``; a value is a float or a :class:`Uniform`.
        stochastic  True when applying it draws random numbers (stoch, stochm, stochm3,
                    stochm_literal, addnorm, multunif); then every call gives a new draw.
        random_params  True when some parameter is a :class:`Uniform` still to be drawn.
        spec        the string form; ``parse(p.spec) == p``.

    Use in Algorithm 1 (the whole network shares one draw of the parameters per
    minibatch)::

        step = projection.sample(rng)           # fixed parameters for this minibatch
        P_k = step(W_k, rng)                    # for every layer k
    """

    def __init__(self, name, **params):
        key = str(name).strip().lower()
        if key not in REGISTRY:
            raise ValueError(f"unknown projection {name!r}\n{_valid_specs_text()}")
        entry = REGISTRY[key]
        allowed = {p.name: p for p in entry.params}
        unknown = sorted(set(params) - set(allowed))
        if unknown:
            raise ValueError(
                f"projection {key!r} has no parameter {', '.join(map(repr, unknown))}; "
                f"it is written {entry.usage(key)}\n{_valid_specs_text()}")
        missing = [p for p in allowed if p not in params]
        if missing:
            raise ValueError(
                f"projection {key!r} needs a value for {', '.join(map(repr, missing))}; "
                f"write it as {entry.usage(key)}\n{_valid_specs_text()}")
        checked = {}
        for pname, param in allowed.items():
            checked[pname] = _checked_value(key, param, params[pname])
        self.name = key
        self.params = checked
        self.stochastic = entry.stochastic
        self._entry = entry

    @property
    def random_params(self) -> bool:
        """True when a parameter is a :class:`Uniform` that :meth:`sample` must draw."""
        return any(isinstance(v, Uniform) for v in self.params.values())

    def eager_reason(self) -> str | None:
        """Why a training step with this projection cannot be captured as a CUDA graph, or
        None: a ``U(..)`` parameter other than Power's β (which power_device.py keeps on the
        device) is drawn on the host each minibatch (see :class:`Uniform`)."""
        host_drawn = [k for k, v in self.params.items() if isinstance(v, Uniform)
                      and (self.name, k) not in DEVICE_DRAWN]
        if not host_drawn:
            return None
        names = " and ".join(f"{k}={self.params[k]}" for k in host_drawn)
        return (f"{self.spec}: {names} is drawn once per minibatch and read back to the host "
                "(one sync per step), and the projection's kernels take it as a launch "
                "argument that a graph would freeze; only Power's beta=U(..) is drawn on the "
                "device. Every step runs eagerly")

    @property
    def use(self) -> str:
        """How the paper uses this projection: "train", "test" or "train, test"."""
        return self._entry.use

    @property
    def spec(self) -> str:
        """The spec string, e.g. ``"power:beta=U(0,2)"``; ``parse(spec)`` rebuilds it."""
        if not self.params:
            return self.name
        values = ",".join(f"{k}={_fmt(v) if isinstance(v, float) else v}"
                          for k, v in self.params.items())
        return f"{self.name}:{values}"

    def sample(self, rng=None) -> "Projection":
        """A projection with every random parameter drawn once; ``self`` if none is random.

        Call it once per minibatch and apply the result to every layer, so the whole
        network uses the same beta (Tr-Power-C: beta ~ U[0, 2] per minibatch).
        """
        if not self.random_params:
            return self
        rng = rng_or_global(rng)
        drawn = {k: v.draw(rng) if isinstance(v, Uniform) else v for k, v in self.params.items()}
        return Projection(self.name, **drawn)

    def __call__(self, w, rng=None):
        """Project one weight tensor ``w`` (a whole layer); returns a new array."""
        if self.random_params:
            raise ValueError(
                f"projection {self.spec!r} has a random parameter. Draw it once per "
                "minibatch with `step = projection.sample(rng)` and apply `step(W_k, rng)` "
                "to every layer, so the whole network shares the same value.")
        args = [self.params[p.name] for p in self._entry.params]
        if self.stochastic:
            args.append(rng)
        return self._entry.function(w, *args)

    def __eq__(self, other):
        return isinstance(other, Projection) and self.spec == other.spec

    def __hash__(self):
        return hash(self.spec)

    def __str__(self):
        return self.spec

    def __repr__(self):
        args = "".join(f", {k}={_fmt(v) if isinstance(v, float) else repr(v)}"
                       for k, v in self.params.items())
        return f"Projection({self.name!r}{args})"


def _checked_value(name, param, value):
    """``value`` as a float or :class:`Uniform`, after checking ``param``'s rule."""
    if isinstance(value, Uniform):
        ends = [value.low, value.high]
    else:
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"projection {name!r}: {param.name} must be a number or "
                             f"U(low,high); got {value!r}\n{_valid_specs_text()}") from None
        ends = [value]
    for v in ends:
        if not (math.isfinite(v) and param.ok(v)):
            raise ValueError(f"projection {name!r}: {param.name}={v} breaks the rule "
                             f"{param.rule}\n{_valid_specs_text()}")
    return value


_UNIFORM = re.compile(r"^u(?:niform)?\(([^,()]+),([^,()]+)\)$")


def _split_params(text):
    """Split ``a=1,b=U(0,2)`` at the commas that are not inside parentheses."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += (ch == "(") - (ch == ")")
        if ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p for p in parts if p]


def _parse_value(name, pname, text):
    match = _UNIFORM.match(text)
    if match:
        try:
            return Uniform(float(match.group(1)), float(match.group(2)))
        except ValueError as err:
            raise ValueError(f"projection {name!r}: bad range {text!r} for {pname} ({err})\n"
                             f"{_valid_specs_text()}") from None
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"projection {name!r}: {pname}={text!r} is not a number or "
                         f"U(low,high)\n{_valid_specs_text()}") from None


def parse(spec) -> Projection:
    """A :class:`Projection` from a spec string (or the Projection itself, unchanged).

    Grammar: ``name`` or ``name:param=value[,param=value]``, where value is a number
    or ``U(low,high)``. Case and spaces do not matter. Examples::

        parse("sign"); parse("round"); parse("none"); parse("stoch")
        parse("power:beta=0.5"); parse("power:beta=U(0,2)")
        parse("stochm:gamma=0.5"); parse("stochm3:gamma=0.5"); parse("stochm_literal:gamma=0.5")
        parse("addnorm:sigma=0.3"); parse("multunif:gamma=0.5")

    A bad spec raises ValueError naming what was wrong and listing the valid specs.
    """
    if isinstance(spec, Projection):
        return spec
    if not isinstance(spec, str):
        raise ValueError(f"a projection spec must be a string like 'power:beta=0.5' or a "
                         f"Projection; got {type(spec).__name__}\n{_valid_specs_text()}")
    text = "".join(spec.split()).lower()
    name, _, rest = text.partition(":")
    if name not in REGISTRY:
        raise ValueError(f"unknown projection {name!r} in spec {spec!r}\n{_valid_specs_text()}")
    params = {}
    for item in _split_params(rest):
        pname, eq, value = item.partition("=")
        if not eq or not pname or not value:
            raise ValueError(f"cannot read {item!r} in spec {spec!r}: parameters are written "
                             f"param=value\n{_valid_specs_text()}")
        if pname in params:
            raise ValueError(f"parameter {pname!r} given twice in spec {spec!r}")
        params[pname] = _parse_value(name, pname, value)
    return Projection(name, **params)
