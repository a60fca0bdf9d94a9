"""Noise sites: a noisy view of a trained network, one site after every operation.

Walking Noise puts a noise site after every operation of the network: the **input**, each
**conv/linear**, each **batch norm**, each **ReLU**, each **pooling**, and so the **logits**
(the output of the last layer); none after flatten (it only reshapes) or dropout. A site is
named after the layer whose output it perturbs, index 0 being the input::

    mlp_tfc (bn=False), 8 sites      mlp_tfc(bn=True), 11 sites
      0 input                          0 input
      1 fc1    2 relu1                 1 fc1   2 bn1   3 relu1
      3 fc2    4 relu2                 4 fc2   5 bn2   6 relu2
      5 fc3    6 relu3                 7 fc3   8 bn3   9 relu3
      7 fc4    (the logits)           10 fc4  (the logits)

    lenet5: input, conv1, [bn1], relu1, pool1, conv2, [bn2], relu2, pool2, fc3, [bn3], relu3,
            fc4, [bn4], relu4, fc5 (logits)     -> 12 sites, 16 with batch norm

:class:`NoisyModel` wraps a flat ``nn.Sequential`` (every model of ``tinyproj.models``)
*without changing it*: parameter names, state_dict and the model's own forward stay as they
were. The wrapper's forward runs the layers one by one and perturbs the output of each active
site::

    noisy = NoisyModel(model, rng)
    [s.name for s in noisy.sites]             # ['input', 'fc1', 'relu1', ..., 'fc4']
    noisy.set_noise(NoiseSpec("additive", 0.1), sites=["relu2"])     # or [4], "all"
    noisy.eval(); scores = noisy(x)           # relu2's output gets x + N(0, 0.1)
    noisy.clear_noise()                       # exactly the clean network again

When is noise on? In training mode when ``spec.train``, in evaluation mode when
``spec.eval``. Repeats, two readings of Walking Noise's "averaging N repeated executions"
(``spec.repeat_at``):

- ``"network"``: with ``spec.repeats = N > 1`` an *evaluation-mode* forward runs the whole
  noisy network N times, with fresh noise each time, and returns the mean of the N score
  arrays; this divides the noise's standard deviation at the output by √N to first order.
  Training-mode passes ignore it (one noisy pass per step).
- ``"site"`` (the authors' code): at every noisy site k the layer's output x is computed once
  and N_k noise draws of it are averaged, ``(1/N_k)·Σₙ noise(x)``, so the site's noise has
  standard deviation σ/√N_k exactly; N_k = ``spec.site_repeats[k]`` (the authors choose N
  per layer) or ``spec.repeats``. Applied in every noisy pass, as in the authors' forward.

Global noise without the batch-norm sites (the authors' "BN-noNoise" models): the sites
``"all-no-bn"`` are every site except those after a batch norm.

The wrapper forwards everything else (``parameters()``, ``modules()``, ``state_dict()``,
``train()``/``eval()``, ...) to the model, so it can be handed to ``evaluation.error_rate``
and ``evaluation.reestimate_batchnorm`` like the model itself.
"""
from __future__ import annotations

from dataclasses import dataclass

from .. import nn
from ..tensor import as_tensor
from .noise import NoiseSpec, noise_mean, parse_noise

__all__ = ["Site", "NoisyModel", "model_sites", "SITE_KINDS", "NO_BN_NAMES"]

NO_BN_NAMES = ("all-no-bn", "bn-nonoise", "all-but-bn")
"""Names of the global noise without the sites after batch norm (the authors' BN-noNoise)."""

SITE_KINDS = {nn.Conv2d: "conv", nn.Linear: "linear", nn.BatchNormBase: "batchnorm",
              nn.ReLU: "relu", nn.MaxPool2d: "pool"}
"""Layer type -> the ``kind`` of the site after it. Flatten and Dropout have no site; any
other layer type gets a site of kind = its class name in lower case."""

_NO_SITE = (nn.Flatten, nn.Dropout)


@dataclass(frozen=True)
class Site:
    """One noise site.

    index   0..S−1 in forward order (0 = the input)
    name    "input" or the name of the layer whose output it perturbs ("fc1", "relu2", ...)
    kind    "input" | "conv" | "linear" | "batchnorm" | "relu" | "pool" (the layer's type)
    logits  True for the last site: the output of the last layer, the scores
    """

    index: int
    name: str
    kind: str
    logits: bool = False


def _kind_of(layer) -> str:
    for cls, kind in SITE_KINDS.items():
        if isinstance(layer, cls):
            return kind
    return type(layer).__name__.lower()


def model_sites(model) -> list:
    """The :class:`Site` list of a flat Sequential model (see the module docstring)."""
    if not isinstance(model, nn.Sequential):
        raise TypeError(f"noise sites need a flat nn.Sequential of named layers (every model of "
                        f"tinyproj.models is one); got {type(model).__name__}")
    layers = model.named_children()
    if not layers:
        raise ValueError("noise sites: the model has no layers")
    nested = [name for name, m in layers if isinstance(m, nn.Sequential)]
    if nested:
        raise ValueError(f"noise sites need a flat Sequential; layer(s) {', '.join(nested)} are "
                         "Sequentials themselves. Build the model as one Sequential of layers.")
    sites = [Site(0, "input", "input")]
    for name, layer in layers:
        if not isinstance(layer, _NO_SITE):
            sites.append(Site(len(sites), name, _kind_of(layer)))
    last = sites[-1]
    if last.index > 0 and last.name == layers[-1][0]:
        sites[-1] = Site(last.index, last.name, last.kind, logits=True)
    return sites


class NoisyModel:
    """A trained flat Sequential with a noise site after every operation (module docstring).

    model: the network (left unchanged). rng: the generator the noise is drawn from (rule 5);
    settable as ``noisy.rng`` (a walk gives every grid point its own generator).

    Attributes: ``model``, ``rng``, ``sites`` (list of Site), ``spec`` (NoiseSpec or None),
    ``active`` (sorted site indices with noise).
    """

    def __init__(self, model, rng):
        if isinstance(model, NoisyModel):
            model = model.model
        self.__dict__.update(model=model, rng=rng, sites=model_sites(model), spec=None,
                             active=())
        plan, position = [], 1
        for name, layer in model.named_children():
            if isinstance(layer, _NO_SITE):
                plan.append((name, layer, None))
            else:
                plan.append((name, layer, position))
                position += 1
        self.__dict__["_plan"] = plan

    # -- sites --------------------------------------------------------------
    @property
    def num_sites(self) -> int:
        return len(self.sites)

    @property
    def site_names(self) -> list:
        return [s.name for s in self.sites]

    def site(self, key) -> Site:
        """The Site with this index (negative counts from the end) or name."""
        if isinstance(key, Site):
            key = key.index
        if isinstance(key, bool):
            raise TypeError(f"a site is an index or a name, got {key!r}")
        if isinstance(key, int) or (hasattr(key, "dtype") and getattr(key, "ndim", 1) == 0):
            i = int(key)
            if not -len(self.sites) <= i < len(self.sites):
                raise ValueError(f"site index {i} is out of range: this model has "
                                 f"{len(self.sites)} sites (0..{len(self.sites) - 1}: "
                                 f"{', '.join(self.site_names)})")
            return self.sites[i]
        if isinstance(key, str):
            text = key.strip()
            if text.lstrip("-").isdigit():
                return self.site(int(text))
            for s in self.sites:
                if s.name == text:
                    return s
            raise ValueError(f"unknown site {key!r}; the sites of this model are: "
                             f"{', '.join(f'{s.index} {s.name}' for s in self.sites)}")
        raise TypeError(f"a site is an index or a name, got {type(key).__name__} {key!r}")

    def resolve_sites(self, sites="all") -> list:
        """Sorted site indices: ``"all"`` or None (every site), ``"all-no-bn"`` (every site
        but those after a batch norm: the authors' BN-noNoise), one index/name, or a list."""
        if sites is None or (isinstance(sites, str) and sites.strip().lower() == "all"):
            return list(range(len(self.sites)))
        if isinstance(sites, str) and sites.strip().lower() in NO_BN_NAMES:
            return [s.index for s in self.sites if s.kind != "batchnorm"]
        if isinstance(sites, str) and "," in sites:
            sites = [s for s in sites.split(",") if s.strip()]
        if isinstance(sites, (str, int, Site)) or hasattr(sites, "dtype"):
            sites = [sites]
        indices = sorted({self.site(s).index for s in sites})
        if not indices:
            raise ValueError("no sites given; pass 'all', a site name/index or a list of them")
        return indices

    # -- noise --------------------------------------------------------------
    def set_noise(self, spec, sites="all", rng=None) -> "NoisyModel":
        """Put noise ``spec`` (NoiseSpec or text) at ``sites``; returns self.

        sites: "all" or None = every site; an index, a name, or a list of them (e.g.
        ``[0, "relu2"]``). rng: a new generator to draw from (default: keep ``self.rng``).
        """
        spec = spec if isinstance(spec, NoiseSpec) else parse_noise(spec)
        if spec.site_repeats is not None and len(spec.site_repeats) != len(self.sites):
            raise ValueError(f"site_repeats gives {len(spec.site_repeats)} N(s), but this model "
                             f"has {len(self.sites)} sites ({', '.join(self.site_names)}): give "
                             "one N per site")
        active = tuple(self.resolve_sites(sites))
        self.__dict__.update(spec=spec, active=active)
        if rng is not None:
            self.__dict__["rng"] = rng
        return self

    def clear_noise(self) -> "NoisyModel":
        """No noise anywhere: the forward equals the model's own."""
        self.__dict__.update(spec=None, active=())
        return self

    @property
    def noise_on(self) -> bool:
        """Whether the next forward is noisy (depends on the mode: spec.train / spec.eval)."""
        spec = self.spec
        if spec is None or not self.active or spec.is_zero:
            return False
        return spec.train if self.training else spec.eval

    # -- forward ------------------------------------------------------------
    def __call__(self, x):
        return self.forward(x)

    def forward(self, x):
        """Scores (N, classes); noisy at the active sites when :attr:`noise_on`."""
        if not self.noise_on:
            return self.model(x)
        repeats = 1 if self.training or self.spec.repeat_at == "site" else self.spec.repeats
        out = self._run(x)
        if repeats == 1:
            return out
        for _ in range(repeats - 1):
            out = out + self._run(x)
        return out * (1.0 / repeats)

    def _perturb(self, index, x):
        if index not in self.active:
            return x
        n = self.spec.repeats_at(index) if self.spec.repeat_at == "site" else 1
        return noise_mean(x, self.spec, self.rng, n)     # n = 1: one draw, as noise()

    def _run(self, x, trace=None):
        x = as_tensor(x)
        noisy = self.noise_on
        x = self._perturb(0, x) if noisy else x
        if trace is not None:
            trace.append(x)
        for _, layer, index in self._plan:
            x = layer(x)
            if index is not None:
                if noisy:
                    x = self._perturb(index, x)
                if trace is not None:
                    trace.append(x)
        return x

    def site_outputs(self, x) -> list:
        """The value at every site (after its noise, if any) for input x: S Tensors.

        ``site_outputs(x)[k]`` is what flows out of site k; the last one is the scores.
        One pass (repeats are not applied).
        """
        trace = []
        self._run(x, trace)
        return trace

    # -- the rest is the model's ---------------------------------------------
    @property
    def training(self) -> bool:
        return self.model.training

    def train(self, mode: bool = True) -> "NoisyModel":
        self.model.train(mode)
        return self

    def eval(self) -> "NoisyModel":
        self.model.eval()
        return self

    def __getattr__(self, name):
        # only called when normal lookup fails: everything else is the wrapped model's
        model = self.__dict__.get("model")
        if model is None:
            raise AttributeError(name)
        return getattr(model, name)

    def __setattr__(self, name, value):
        if name in ("rng",):
            self.__dict__[name] = value
        elif name in ("model", "sites", "spec", "active"):
            raise AttributeError(f"NoisyModel.{name} is set by the constructor / set_noise()")
        else:
            setattr(self.model, name, value)

    def __repr__(self):
        where = ", ".join(self.sites[i].name for i in self.active) or "none"
        return (f"NoisyModel({type(self.model).__name__}, {len(self.sites)} sites, "
                f"noise={self.spec if self.spec else None} at {where})")
