"""Batch-norm re-estimation for the test protocol: exact population statistics in grouped passes.

Merolla et al. (section 3): "Batch norm parameters are re-computed on the training data for
each distortion." The paper gives no amount of data and no method, so "re-computed on the
training data" is read as the statistics of the training set itself: every image (or a stated
number of them), each once. Two protocols, chosen by :class:`BNProtocol`:

``exact`` (the default for reported numbers; ``runs/bn_exact.py``)
    Pass over ``images`` training images (all of them by default, in a random order drawn from
    the draw's generator) in large batches of ``pass_size`` images. Every batch-norm layer
    accumulates, per channel c, over every value x it sees (N·H·W values per image)::

        n_c  = Σ 1,    S_c = Σ x (float64),    M2_c = Σ (x − mean_c)² (float64)

    merging each batch's (n_b, mean_b, M2_b) into the running totals with Chan's update
    (exact, no momentum, no cancellation from a raw Σ x²)::

        δ = mean_b − mean,   mean ← mean + δ·n_b/(n + n_b),   M2 ← M2 + M2_b + δ²·n·n_b/(n + n_b)

    and at the end ``running_mean = mean``, ``running_var = M2/(n − 1)`` (the unbiased
    variance, the convention of the training-mode running estimate). Inside a batch each
    layer normalises with that batch's own statistics, as a training-mode forward pass does,
    so the input to layer k+1 is what training-mode batch norm would give with batches of
    ``pass_size``; with a few hundred images or more per batch these are within O(1/√B) of the
    population values. Cost: ⌈images/pass_size⌉ forward passes — "a few grouped passes" on a
    GPU, where the whole training set can be one pass.

``batches`` (the project's earlier protocol, kept selectable)
    ``num_batches`` random batches of ``batch_size`` images (20 × 50 = 1,000 images before),
    each layer's statistics the plain average of the per-batch means and unbiased variances
    (momentum 1/(k+1), ``runs.evaluation.reestimate_batchnorm``). The average of within-batch
    variances misses the spread between batch means, and 1,000 images is a small sample: on
    the project's 1-epoch width-0.25 networks this alone moved test error by up to ~1.6
    points between draws, more than Table 2's gaps (0.2–0.7 points).

``none``: the stored statistics are kept (``num_batches = 0`` in the batches protocol).

Only the batch-norm layers see the difference; everything else runs in evaluation mode.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import UserError
from ..runs.bn_exact import DEFAULT_PASS_SIZE, reestimate_exact
from ..runs.evaluation import reestimate_batchnorm

__all__ = ["BNProtocol", "parse_bn_images", "protocol_from_settings", "reestimate_exact",
           "reestimate", "DEFAULT_PASS_SIZE"]

def parse_bn_images(text, flag: str = "--bn-images"):
    """``"all"`` → None (every training image); a positive integer → that many images."""
    if text is None:
        return None
    value = str(text).strip().lower()
    if value in ("all", ""):
        return None
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 1 or str(n) != value:
        raise UserError(f"{flag} must be 'all' (a full pass over the training set) or a "
                        f"positive number of images; got {text!r}", flag=flag)
    return n


def _count(value, flag: str, low: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise UserError(f"{flag} must be an integer >= {low} ({what}); got {value!r}", flag=flag)
    return value


def protocol_from_settings(bn_images=None, bn_pass_size: int = None, bn_batches=None,
                           bn_batch_size: int = 50) -> "BNProtocol":
    """The :class:`BNProtocol` of the settings every command shares (``tinyproj sweep``'s flags).

    bn_images: ``"all"`` or None (every training image, the default) or N — the exact protocol
    over that many images, read in passes of ``bn_pass_size`` (default DEFAULT_PASS_SIZE).
    bn_batches: K — **the old protocol** instead: the average of K random batches of
    ``bn_batch_size`` (the project's earlier 20 × 50; 0 keeps the stored statistics). Giving
    both is refused. A bad value raises :class:`~tinyproj.errors.UserError` naming its flag.
    """
    pass_size = DEFAULT_PASS_SIZE if bn_pass_size is None else bn_pass_size
    _count(pass_size, "--bn-pass-size", 1, "images per forward pass of the exact re-estimation")
    _count(bn_batch_size, "--bn-batch-size", 1, "images per batch of the old protocol")
    if bn_batches is not None:
        if bn_images is not None:
            raise UserError("give either --bn-images (exact re-estimation over that many "
                            "training images, default all) or --bn-batches (the old protocol: "
                            "that many batches of --bn-batch-size averaged), not both",
                            flag="--bn-images")
        _count(bn_batches, "--bn-batches", 0, "0 keeps the stored statistics")
        return BNProtocol.batches(bn_batches, bn_batch_size)
    return BNProtocol("exact", images=parse_bn_images(bn_images), pass_size=pass_size)


@dataclass(frozen=True)
class BNProtocol:
    """How batch norm is re-estimated for each draw of a test distortion.

    kind         "exact" | "batches" | "none" (module docstring)
    images       exact: training images per re-estimation (None: all of them)
    pass_size    exact: images per forward pass
    num_batches, batch_size   batches: the old protocol's K batches of B images
    """

    kind: str = "exact"
    images: int | None = None
    pass_size: int = DEFAULT_PASS_SIZE
    num_batches: int = 20
    batch_size: int = 50

    def __post_init__(self):
        if self.kind not in ("exact", "batches", "none"):
            raise ValueError(f"BNProtocol.kind must be exact, batches or none; got {self.kind!r}")
        if self.images is not None and (not isinstance(self.images, int) or self.images < 1):
            raise ValueError(f"images must be a positive integer or None; got {self.images!r}")
        if self.pass_size < 1 or self.batch_size < 1 or self.num_batches < 0:
            raise ValueError("pass_size and batch_size must be >= 1, num_batches >= 0")

    @classmethod
    def batches(cls, num_batches: int = 20, batch_size: int = 50) -> "BNProtocol":
        """The old protocol (``num_batches = 0``: keep the stored statistics)."""
        return cls("batches" if num_batches else "none", num_batches=num_batches,
                   batch_size=batch_size)

    def images_used(self, n_train: int) -> int:
        """Training images one re-estimation reads (0 for ``none``)."""
        if self.kind == "exact":
            return n_train if self.images is None else min(self.images, n_train)
        if self.kind == "batches":
            return min(self.num_batches * self.batch_size, n_train)
        return 0

    def settings(self, n_train: int) -> dict:
        """Row fields that identify the protocol (old rows, made before ``exact`` existed,
        have no ``bn_images``/``bn_pass_size``: None here means the batches protocol)."""
        if self.kind == "exact":
            return {"bn_batches": None, "bn_batch_size": None,
                    "bn_images": self.images_used(n_train), "bn_pass_size": self.pass_size}
        return {"bn_batches": self.num_batches, "bn_batch_size": self.batch_size,
                "bn_images": None, "bn_pass_size": None}

    def describe(self, n_train: int | None = None) -> str:
        """E.g. ``exact, all 45000 training images in passes of 1000`` or ``20 × 50 batches``."""
        if self.kind == "exact":
            if self.images is None:
                amount = "all training images" if n_train is None else \
                    f"all {n_train} training images"
            else:
                amount = f"{self.images} training images"
            return f"exact over {amount}, passes of {self.pass_size}"
        if self.kind == "batches":
            return f"average of {self.num_batches} batches of {self.batch_size}"
        return "stored statistics"


def reestimate(model, source, protocol: BNProtocol, rng=None) -> int:
    """Re-estimate with ``protocol``; returns the number of training images read."""
    if protocol.kind == "exact":
        return reestimate_exact(model, source, protocol.images, protocol.pass_size, rng)
    if protocol.kind == "batches":
        used = reestimate_batchnorm(model, source, protocol.num_batches, protocol.batch_size,
                                    rng)
        return min(used * protocol.batch_size, len(source))
    return 0
