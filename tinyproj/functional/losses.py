"""Loss functions: the square hinge loss of BinaryConnect/Merolla and cross-entropy.

scores : (N, K) Tensor of class scores; labels : (N,) integer class indices.
Both return the mean over the batch (a scalar Tensor).
"""
from __future__ import annotations

from .. import backend
from ..tensor import Function, Tensor, as_tensor
from .elementwise import mul, pow, relu, sub
from .reductions import mean


def _check(name, scores, labels):
    labels = labels.data if isinstance(labels, Tensor) else labels
    xp = backend.xp_of(scores.data)
    labels = xp.asarray(labels)
    if scores.ndim != 2:
        raise ValueError(f"{name}: scores must be 2-D (N, num_classes), got {tuple(scores.shape)}")
    if labels.shape != (scores.shape[0],):
        raise ValueError(f"{name}: labels of shape {tuple(labels.shape)} do not match scores of "
                         f"shape {tuple(scores.shape)}: expected labels ({scores.shape[0]},)")
    if labels.dtype.kind not in "iu":
        raise ValueError(f"{name}: labels must be integer class indices, got dtype {labels.dtype}")
    if labels.size and (int(labels.min()) < 0 or int(labels.max()) >= scores.shape[1]):
        raise ValueError(f"{name}: labels must lie in [0, {scores.shape[1] - 1}], got values in "
                         f"[{int(labels.min())}, {int(labels.max())}]")
    return labels


def one_vs_all_targets(labels, num_classes, dtype):
    """±1 targets: t[n, k] = +1 if k == labels[n] else −1.  (N,) → (N, K)."""
    xp = backend.xp_of(labels)
    t = -xp.ones((labels.shape[0], num_classes), dtype=dtype)
    t[xp.arange(labels.shape[0]), labels] = 1
    return t


def square_hinge_loss(scores, labels):
    """L = mean over n and k of max(0, 1 − t[n,k]·s[n,k])², t the ±1 one-vs-all targets.

    The loss of BinaryConnect and of Merolla et al. (scores are the batch-normed
    outputs of the last layer). The mean runs over samples *and* classes.
    """
    scores = as_tensor(scores)
    labels = _check("square_hinge_loss", scores, labels)
    t = one_vs_all_targets(labels, scores.shape[1], scores.dtype)
    margin = relu(sub(1.0, mul(scores, t)))
    return mean(pow(margin, 2))


class CrossEntropy(Function):
    """L = mean_n [ logsumexp(s[n]) − s[n, y_n] ],  dL/ds = (softmax(s) − onehot(y)) / N.

    logsumexp is computed stably as m + log Σ exp(s − m) with m the row maximum.
    """

    def __init__(self, labels):
        self.labels = labels

    def forward(self, s):
        xp = backend.xp_of(s)
        m = s.max(axis=1, keepdims=True)
        e = xp.exp(s - m)
        z = e.sum(axis=1, keepdims=True)
        self.softmax = e / z
        n = s.shape[0]
        logp = (s - m - xp.log(z))[xp.arange(n), self.labels]
        return -logp.mean()

    def backward(self, gy):
        xp = backend.xp_of(gy)
        n = self.softmax.shape[0]
        g = self.softmax.copy()
        g[xp.arange(n), self.labels] -= 1
        return g * (gy / n)


def cross_entropy(scores, labels):
    """Mean cross-entropy of softmax(scores) against integer labels (stable log-sum-exp)."""
    scores = as_tensor(scores)
    labels = _check("cross_entropy", scores, labels)
    return CrossEntropy(labels)(scores)
