"""Checkers for the exercises at the end of each lesson (not a lesson: no ``NN_`` prefix).

Each lesson ends with two or three exercises. You write your answer in place of ``...`` and run
the cell; ``check_NN_k(answer)`` prints **correct**, or what is off, or *not answered yet* while
the answer is still ``...`` (or None). It returns True, False or None, so a test can use it too.

There is no solution file: a checker computes the right answer with tinyproj itself (autograd,
``gradcheck``, the projections, the midpoint rule, ...) or checks a property your answer must
have. Reading this file tells you how an answer is checked, so try the exercise first.
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["check_01_1", "check_01_2", "check_01_3", "check_02_1", "check_02_2", "check_03_1",
           "check_03_2", "check_04_1", "check_04_2", "check_05_1", "check_05_2", "check_06_1",
           "check_06_2", "check_07_1", "check_07_2", "check_08_1", "check_08_2", "check_09_1",
           "check_09_2", "check_09_3", "check_10_1", "check_10_2", "check_11_1", "check_11_2"]


# ---------------------------------------------------------------------------
# Helpers: one way to say "not answered", "correct" and "wrong".
# ---------------------------------------------------------------------------
def _unanswered(answer) -> bool:
    return answer is None or answer is Ellipsis


def _verdict(name: str, answer, check) -> bool | None:
    """Run ``check(answer)`` → None (all right) or a message; print the verdict, return it."""
    if _unanswered(answer):
        print(f"{name}: not answered yet (replace the ... by your answer and run the cell again)")
        return None
    try:
        problem = check(answer)
    except _NotAnswered:
        print(f"{name}: not answered yet (your function still returns ...)")
        return None
    except Exception as err:                       # a wrong answer must never crash the lesson
        problem = f"checking it raised {type(err).__name__}: {err}"
    if problem is None:
        print(f"{name}: correct")
        return True
    print(f"{name}: not yet — {problem}")
    return False


class _NotAnswered(Exception):
    """A function answer that still returns ``...``."""


def _called(fn, *args):
    """``fn(*args)``, raising _NotAnswered when it still returns ``...`` or None."""
    out = fn(*args)
    if _unanswered(out):
        raise _NotAnswered
    return out


def _array(answer, shape=None) -> np.ndarray:
    """``answer`` (a Tensor, an array on the host or a device, a list, a number) as a float64
    NumPy array on the host, where the checkers compare."""
    from tinyproj import backend

    a = answer.numpy() if hasattr(answer, "numpy") else backend.to_numpy(answer)
    a = np.asarray(a, dtype=np.float64)
    if shape is not None and a.shape != tuple(shape):
        raise ValueError(f"expected shape {tuple(shape)}, got {a.shape}")
    return a


def _close_array(answer, want, what: str, rtol=1e-6, atol=1e-9):
    a = _array(answer)
    want = _array(want)
    if a.shape != want.shape:
        return f"{what} should have shape {want.shape}, yours has {a.shape}"
    if not np.allclose(a, want, rtol=rtol, atol=atol):
        worst = int(np.argmax(np.abs(a - want)))
        return (f"{what} differs at flat index {worst}: yours {a.ravel()[worst]:.6g}, "
                f"expected {want.ravel()[worst]:.6g}")
    return None


def _close_number(answer, want: float, what: str, rtol=1e-3):
    value = float(answer)
    if not math.isclose(value, want, rel_tol=rtol, abs_tol=1e-12):
        direction = "too large" if value > want else "too small"
        return f"{what} = {value:.6g} is {direction}"
    return None


# ---------------------------------------------------------------------------
# Lesson 1: autograd
# ---------------------------------------------------------------------------
X_01 = [1.0, -2.0, 0.5]


def check_01_1(answer):
    """dL/dx of L = Σ 3·x² at x = X_01, as an array of 3 numbers."""
    import tinyproj as tp

    def check(a):
        x = tp.tensor(np.array(X_01), requires_grad=True)
        (3.0 * x * x).sum().backward()
        return _close_array(a, tp.backend.to_numpy(x.grad), "dL/dx", rtol=1e-5)
    return _verdict("exercise 1.1", answer, check)


def check_01_2(cube_class):
    """A Function class for y = x³ whose backward is right (checked with gradcheck)."""
    import tinyproj as tp
    from tinyproj.gradcheck import gradcheck

    def check(cls):
        if not (isinstance(cls, type) and issubclass(cls, tp.Function)):
            return "give the class itself (a subclass of tp.Function), e.g. Cube"
        x = np.array([0.5, -1.5, 2.0])
        y = cls()(tp.tensor(x))
        if not np.allclose(y.numpy(), x ** 3):
            return "forward does not compute x³"
        probe = cls()
        probe.forward(x.copy())
        _called(probe.backward, np.ones_like(x))
        result = gradcheck(lambda t: cls()(t), [x], raise_on_fail=False)
        if not result:
            return "backward does not match the numerical gradient (is it gy · 3x²?)"
        return None
    return _verdict("exercise 1.2", cube_class, check)


def check_01_3(answer):
    """The gradient of b in L = Σ (x + b) with x of shape (4, 3), b of shape (3,)."""
    import tinyproj as tp

    def check(a):
        x = tp.tensor(np.zeros((4, 3)), requires_grad=True)
        b = tp.tensor(np.zeros(3), requires_grad=True)
        (x + b).sum().backward()
        a = _array(a)
        if a.shape != (3,):
            return (f"b.grad has b's own shape (3,), yours is {a.shape}: broadcasting in forward "
                    f"means summing in backward")
        return _close_array(a, tp.backend.to_numpy(b.grad), "b.grad")
    return _verdict("exercise 1.3", answer, check)


# ---------------------------------------------------------------------------
# Lesson 2: convolution as im2col
# ---------------------------------------------------------------------------
def check_02_1(my_out_size):
    """A function (size, k, stride, pad) -> output length, as tinyproj computes it."""
    from tinyproj.kernels.reference import out_size

    def check(fn):
        for size in (4, 7, 8, 32, 33):
            for k in (1, 2, 3, 5):
                for stride in (1, 2, 3):
                    for pad in (0, 1, 2):
                        if size + 2 * pad < k:
                            continue
                        got, want = _called(fn, size, k, stride, pad), out_size(size, k, stride, pad)
                        if got != want:
                            return (f"my_out_size({size}, k={k}, stride={stride}, pad={pad}) = "
                                    f"{got}, expected {want}")
        return None
    return _verdict("exercise 2.1", my_out_size, check)


def check_02_2(answer):
    """The shape of im2col's columns for x (2, 3, 8, 8), a 3×3 kernel, stride 2, padding 1."""
    from tinyproj.kernels.reference import im2col

    def check(a):
        want = im2col(np.zeros((2, 3, 8, 8), np.float32), 3, 3, stride=(2, 2), pad=(1, 1)).shape
        a = tuple(int(v) for v in a)
        if a == tuple(want):
            return None
        if len(a) != 3:
            return f"the columns have 3 axes (N, C·kh·kw, OH·OW), yours has {len(a)}"
        names = ("N", "C·kh·kw", "OH·OW")
        wrong = [f"{n} = {x} (expected {w})" for n, x, w in zip(names, a, want) if x != w]
        return "; ".join(wrong)
    return _verdict("exercise 2.2", answer, check)


# ---------------------------------------------------------------------------
# Lesson 3: projections
# ---------------------------------------------------------------------------
def check_03_1(my_round):
    """A function w -> Round(w) = α·round(w/α), α = max|w|, ties half away from zero."""
    from tinyproj import projections

    def check(fn):
        rng = np.random.default_rng(3)
        cases = [rng.standard_normal(50).astype(np.float32),
                 np.array([-1.0, -0.5, -0.25, 0.0, 0.25, 0.5, 0.75], np.float32),   # ties at ±α/2
                 (0.1 * rng.standard_normal((4, 5))).astype(np.float32)]
        for w in cases:
            got = _array(_called(fn, w.copy()))
            want = projections.round(w)
            if got.shape != want.shape:
                return f"Round keeps the shape: {w.shape} in, {got.shape} out"
            if not np.allclose(got, want, atol=1e-6):
                i = int(np.argmax(np.abs(got - want)))
                return (f"for w = {w.ravel()[i]:.4g} (α = {np.abs(w).max():.4g}) yours gives "
                        f"{got.ravel()[i]:.4g}, Round gives {want.ravel()[i]:.4g}"
                        + ("  (ties: half away from zero)" if abs(abs(w.ravel()[i] / np.abs(w).max()) - 0.5) < 1e-6 else ""))
        return None
    return _verdict("exercise 3.1", my_round, check)


def check_03_2(answer):
    """E[Stoch(w)] for w = 0.3 in a tensor whose α = max|w| is 1 (measured by many draws)."""
    from tinyproj import backend, projections

    def check(a):
        rng = backend.make_rng(0)
        w = np.full(200_000, 0.3, np.float32)
        w[0] = 1.0                                     # α = 1
        mean = float(np.asarray(projections.stoch(w, rng))[1:].mean())
        if abs(float(a) - mean) > 0.01:
            return (f"{float(a):.4g} is not what 200,000 draws average to (within 0.01); "
                    f"P(+α) = (1 + w/α)/2")
        return None
    return _verdict("exercise 3.2", answer, check)


# ---------------------------------------------------------------------------
# Lesson 4: Algorithm 1
# ---------------------------------------------------------------------------
W_04 = [0.35, -0.38, 0.1]
G_04 = [-1.0, 0.5, 2.0]
LR_04, C_04 = 0.1, 0.4
PARTS_04 = ("project", "forward", "backward", "update", "clip")


def check_04_1(answer):
    """W after one SGD step (lr LR_04, gradient G_04 w.r.t. the projection) and the clip to ±C_04."""
    from tinyproj import clipping

    def check(a):
        want = clipping.prox_linf(np.array(W_04) - LR_04 * np.array(G_04), C_04)
        problem = _close_array(a, want, "W after update and clip", rtol=1e-6, atol=1e-9)
        if problem and np.allclose(_array(a), np.array(W_04) - LR_04 * np.array(G_04)):
            return "that is the update without the clip to [−c, c]"
        return problem
    return _verdict("exercise 4.1", answer, check)


def check_04_2(answer):
    """The five parts of one step of Algorithm 1, in order, named from PARTS_04."""
    def check(a):
        a = [str(s).strip().lower() for s in a]
        unknown = [s for s in a if s not in PARTS_04]
        if unknown:
            return f"use the names {list(PARTS_04)}; unknown: {unknown}"
        if sorted(a) != sorted(PARTS_04):
            return f"each of the five parts once; yours: {a}"
        if a != list(PARTS_04):
            first = next(i for i, (x, y) in enumerate(zip(a, PARTS_04)) if x != y)
            return f"part {first + 1} is not {a[first]!r} (what must exist before it can run?)"
        return None
    return _verdict("exercise 4.2", answer, check)


# ---------------------------------------------------------------------------
# Lesson 5: clipping as a proximal step
# ---------------------------------------------------------------------------
def check_05_1(my_prox):
    """A function (v, c) -> prox of the ℓ∞ box of radius c at v (element-wise)."""
    from tinyproj import clipping

    def check(fn):
        rng = np.random.default_rng(5)
        for c in (0.0, 0.3, 1.0):
            v = 2.0 * rng.standard_normal(40)
            problem = _close_array(_called(fn, v.copy(), c), clipping.prox_linf(v, c),
                                   f"prox(v, c={c})")
            if problem:
                return problem
        return None
    return _verdict("exercise 5.1", my_prox, check)


def check_05_2(answer):
    """Where projected gradient descent on L(w) = ½(w − 3)² inside [−1, 1] ends (run here)."""
    from tinyproj import clipping

    def check(a):
        w = np.array([0.0])
        for _ in range(500):
            w = clipping.prox_linf(w - 0.1 * (w - 3.0), 1.0)
        return _close_number(a, float(w[0]), "w*", rtol=1e-4)
    return _verdict("exercise 5.2", answer, check)


# ---------------------------------------------------------------------------
# Lesson 6: robustness
# ---------------------------------------------------------------------------
QW_06, QN_06 = 0.04, 0.0025


def check_06_1(answer):
    """Bits per weight ½·log2(1 + Q_w/Q_n) for Q_w = QW_06 and noise power Q_n = QN_06."""
    from tinyproj.robustness.bits import snr_bits

    def check(a):
        return _close_number(a, snr_bits(QW_06, QN_06), "bits per weight", rtol=1e-3)
    return _verdict("exercise 6.1", answer, check)


LEVELS_06 = [0.0, 0.2, 0.4, 0.7, 1.0]
ERRORS_06 = [10.0, 12.0, 30.0, 70.0, 88.0]     # percent; chance 90 %


def check_06_2(answer):
    """The midpoint σ of the AddNorm sweep LEVELS_06 / ERRORS_06 (clean 10 %, chance 90 %)."""
    from tinyproj.robustness.midpoint import midpoint_level

    def check(a):
        threshold = ERRORS_06[0] + (90.0 - ERRORS_06[0]) / 2
        level, _ = midpoint_level(LEVELS_06, ERRORS_06, threshold, start=0.0, side="up")
        return _close_number(a, level, "the midpoint σ", rtol=1e-3)
    return _verdict("exercise 6.2", answer, check)


# ---------------------------------------------------------------------------
# Lesson 7: Walking Noise
# ---------------------------------------------------------------------------
SIGMA_07, N_07 = 0.8, 16


def check_07_1(answer):
    """The standard deviation of the mean of N_07 independent N(0, SIGMA_07²) draws (simulated)."""
    def check(a):
        rng = np.random.default_rng(7)
        sim = float((SIGMA_07 * rng.standard_normal((200_000, N_07))).mean(axis=1).std())
        if abs(float(a) - sim) > 0.02 * sim:
            return f"{float(a):.4g} is not what 200,000 simulated averages of {N_07} draws give"
        return None
    return _verdict("exercise 7.1", answer, check)


SIGMAS_07 = [0.1, 0.3, 1.0, 3.0, 10.0]
ACCURACIES_07 = [0.98, 0.97, 0.90, 0.40, 0.12]     # 10 classes: chance 0.1


def check_07_2(answer):
    """μ of the walk SIGMAS_07 / ACCURACIES_07 (halfway from the best accuracy to chance, log σ)."""
    from tinyproj import walking_noise as wn

    def check(a):
        mu = wn.midpoint_sigma(SIGMAS_07, ACCURACIES_07, chance=0.1).sigma
        problem = _close_number(a, mu, "μ", rtol=0.01)
        if problem:
            t = (0.90 - (0.98 + 0.1) / 2) / (0.90 - 0.40)
            if math.isclose(float(a), 1.0 + t * 2.0, rel_tol=0.01):
                return problem + " (that interpolates σ linearly; μ is interpolated on log σ)"
        return problem
    return _verdict("exercise 7.2", answer, check)


# ---------------------------------------------------------------------------
# Lesson 8: kernels
# ---------------------------------------------------------------------------
LAYER_08 = dict(n=50, c=128, o=128, k=3, side=32, pad=1)


def check_08_1(answer):
    """FLOPs (multiply and add counted apart) of the conv layer LAYER_08 (stride 1)."""
    from tinyproj.kernels.reference import out_size

    def check(a):
        d = LAYER_08
        ls = out_size(d["side"], d["k"], 1, d["pad"]) ** 2
        want = 2 * d["n"] * d["o"] * (d["c"] * d["k"] * d["k"]) * ls      # 2·N·O·K·L
        value = float(a)
        if math.isclose(value, want / 2, rel_tol=1e-6):
            return "that counts a multiply-add as one operation; count the multiply and the add"
        return _close_number(value, float(want), "FLOPs", rtol=1e-6)
    return _verdict("exercise 8.1", answer, check)


def check_08_2(answer):
    """Bytes of im2col's float32 columns for x (8, 64, 16, 16), 3×3, stride 1, padding 1."""
    from tinyproj.kernels.reference import cols_nbytes

    def check(a):
        want = cols_nbytes((8, 64, 16, 16), 3, 3, stride=(1, 1), pad=(1, 1), itemsize=4)
        value = float(a)
        if math.isclose(value, want / 4, rel_tol=1e-6):
            return "that is the number of entries; a float32 takes 4 bytes"
        return _close_number(value, float(want), "bytes", rtol=1e-6)
    return _verdict("exercise 8.2", answer, check)


# ---------------------------------------------------------------------------
# Lesson 9: GPU kernels
# ---------------------------------------------------------------------------
def check_09_1(my_sign):
    """A function w -> Table 1's Sign, α·sign(w) with α = max|w| (whole tensor) and sign(0) = +1."""
    from tinyproj.kernels import reference

    def check(fn):
        rng = np.random.default_rng(9)
        weights = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
        weights[0, 0, 0, 0] = 0.0
        cases = [weights,
                 np.array([0.0, -0.5, 0.25, 0.0, 1.5], np.float32),
                 (0.1 * rng.standard_normal((6, 5))).astype(np.float32)]
        for w in cases:
            got = _array(_called(fn, w.copy()))
            want = _array(reference.sign_projection(w))
            if got.shape != want.shape:
                return f"Sign keeps the shape: {w.shape} in, {got.shape} out"
            if np.allclose(got, want, atol=1e-6):
                continue
            alpha = float(np.abs(w).max())
            if np.allclose(got, alpha * np.sign(w), atol=1e-6):
                return ("at w = 0 yours gives 0 (np.sign(0) is 0); Sign uses sign(0) = +1, so "
                        "every weight becomes +α or −α")
            if np.allclose(got, float(np.abs(w).mean()) * np.where(w >= 0, 1.0, -1.0), atol=1e-6):
                return "yours scales by the mean |w|; Table 1's Sign takes α = max|w|"
            i = int(np.argmax(np.abs(got - want)))
            return (f"for w = {w.ravel()[i]:.4g} (α = max|w| = {alpha:.4g}) yours gives "
                    f"{got.ravel()[i]:.4g}, Sign gives {want.ravel()[i]:.4g}")
        return None
    return _verdict("exercise 9.1", my_sign, check)


def snippet_09(xp, host):
    """The code whose launches, syncs and copies exercise 9.2 asks for (xp: the device module)."""
    x = xp.asarray(host)
    y = (x - x.mean()) / x.std()
    first_row = y.reshape(2, -1)[0]
    return first_row.max().item()


COUNTS_09 = ("launches", "syncs", "copies")


def check_09_2(answer):
    """(launches, syncs, copies) of ``snippet_09`` on the device — counted by the stand-in."""
    from tinyproj import standin

    def check(a):
        if isinstance(a, dict):
            a = [a[k] for k in COUNTS_09]
        a = tuple(int(v) for v in a)
        if len(a) != 3:
            return f"give three numbers, {COUNTS_09}; yours has {len(a)}"
        with standin.counting() as counted:
            snippet_09(standin, np.arange(12, dtype=np.float32))
        want = tuple(counted[k] for k in COUNTS_09)
        if a == want:
            return None
        if a == (want[0] + 2, want[1], want[2]):
            return ("reshape and slicing make views of the same memory: no kernel runs, so "
                    "they launch nothing")
        return "; ".join(f"{name}: {x} is {'too many' if x > w else 'too few'}"
                         for name, x, w in zip(COUNTS_09, a, want) if x != w)
    return _verdict("exercise 9.2", answer, check)


STATES_09 = [{"seed": 12345, "stream": 0}, {"seed": 987654321, "stream": 41},
             {"seed": 2 ** 62 + 7, "stream": 1000}]


def check_09_3(my_next_draw):
    """A function (state, n) -> the n float64 uniforms the device generator's next
    ``random(n)`` returns when its state is ``state`` — computed without the generator."""
    from tinyproj.kernels import reference
    from tinyproj.kernels.generator import PhiloxGenerator

    def check(fn):
        for state in STATES_09:
            gen = PhiloxGenerator(device="cpu")      # the device generator, its key on the host
            gen.state = state
            want = _array(gen.random(6))
            got = _array(_called(fn, dict(state), 6))
            if got.shape != want.shape:
                return f"give n = 6 numbers; yours has shape {got.shape}"
            if np.array_equal(got, want):
                continue
            key = np.array([state["seed"], state["stream"]], np.int64)
            if np.array_equal(got, _array(reference.uniform_fill(key, 6, np.float64, 0, 1))):
                return ("that is the draw at the saved stream itself; a draw first moves the "
                        "stream on by one, then fills")
            return (f"for state {state} yours differs from the generator's next draw "
                    f"(first number {got[0]:.6f}, the generator's {want[0]:.6f})")
        return None
    return _verdict("exercise 9.3", my_next_draw, check)


# ---------------------------------------------------------------------------
# Lesson 10: learning dynamics
# ---------------------------------------------------------------------------
W_10 = [-0.3, -0.3, 0.0, 0.3, 0.3]


def check_10_1(answer):
    """Sarle's bimodality coefficient b = (skew² + 1) / kurtosis of the five weights W_10."""
    from tinyproj.walking_noise import dynamics as dyn

    def check(a):
        w = np.array(W_10)
        want = dyn.bimodality_coefficient(w)
        problem = _close_number(a, want, "b", rtol=1e-3)
        if problem:
            d = w - w.mean()
            m2, m3, m4 = (float((d ** k).mean()) for k in (2, 3, 4))
            skew2, kurt = m3 * m3 / m2 ** 3, m4 / (m2 * m2)
            if math.isclose(float(a), (skew2 + 1.0) / (kurt - 3.0), rel_tol=1e-3):
                return (problem + " (that divides by the excess kurtosis m4/m2² − 3; Sarle's b "
                        "divides by the kurtosis m4/m2² itself)")
        return problem
    return _verdict("exercise 10.1", answer, check)


FC2_10 = dict(start=0.06249, clean_end=0.14583, noisy_end=0.70434)   # results/wn-dynamics-mnist


def check_10_2(answer):
    """fc2's mean|w| at the end of the additive σ = 100 run over the clean run's (``vs_clean``)."""
    from tinyproj.walking_noise import dynamics as dyn

    def stats(key):
        return {"fc2": {"mean_abs": FC2_10[key]}}

    def check(a):
        want = dyn.growth(stats("clean_end"), stats("noisy_end"))["fc2"]
        problem = _close_number(a, want, "the noise's factor", rtol=2e-3)
        if problem and math.isclose(float(a), dyn.growth(stats("start"), stats("noisy_end"))["fc2"],
                                    rel_tol=2e-3):
            return (problem + " (that is the growth from the start; the clean run grows its "
                    "weights too, so compare the two runs' ends)")
        return problem
    return _verdict("exercise 10.2", answer, check)


# ---------------------------------------------------------------------------
# Lesson 11: the input pipeline
# ---------------------------------------------------------------------------
PIPELINE_11 = dict(batch=512, step_s=0.12, per_core=450.0, margin=1.2)


def check_11_1(answer):
    """Worker processes needed to feed PIPELINE_11's step with its margin, at per_core images/s."""
    def check(a):
        d = PIPELINE_11
        need = d["batch"] / d["step_s"]                         # images/s the step consumes
        exact = need * d["margin"] / d["per_core"]              # workers, before rounding
        want = math.ceil(exact)
        value = float(a)
        if value == want:
            return None
        bare = need / d["per_core"]                              # no margin
        if value == math.ceil(bare) or math.isclose(value, bare, rel_tol=1e-3):
            return (f"{value:g} workers feed the step with no margin; the pipeline must deliver "
                    f"{d['margin']:g}× the {need:,.0f} images/s the step consumes")
        if value == math.floor(exact) or math.isclose(value, exact, rel_tol=1e-3):
            return (f"{math.floor(exact)} workers deliver {math.floor(exact) * d['per_core']:,.0f} "
                    f"images/s, short of the {need * d['margin']:,.0f} needed: round up")
        if not value.is_integer():
            return f"{value:g} is not a whole number of worker processes"
        return f"{value:g} workers is {'too many' if value > want else 'too few'}"
    return _verdict("exercise 11.1", answer, check)


SIZE_11 = (500, 375)                                             # width × height of the JPEG


def check_11_2(answer):
    """(left, top) of decode_center's 227 × 227 crop in the resized SIZE_11 picture."""
    import inspect

    from PIL import Image

    from tinyproj.data import imagenet_decode as dec

    def check(a):
        a = tuple(float(v) for v in a)
        if len(a) != 2:
            return f"give two numbers, (left, top); yours has {len(a)}"
        defaults = inspect.signature(dec.decode_center).parameters
        resize, crop = defaults["resize"].default, defaults["crop"].default     # 256, 227
        w, h = dec.shorter_side_to(Image.new("RGB", SIZE_11), resize).size
        want = ((w - crop) // 2, (h - crop) // 2)
        if a == want:
            return None
        if a == ((SIZE_11[0] - crop) // 2, (SIZE_11[1] - crop) // 2):
            return ("that is the centre of the original picture; decode_center first resizes it "
                    f"so that its shorter side is {resize}")
        if a == want[::-1]:
            return "left runs along the width, top along the height: swap them"
        if max(abs(x - y) for x, y in zip(a, want)) <= 1:
            return (f"close: where the leftover (size − {crop}) is odd, decode_center takes "
                    f"the integer part of its half, (size − {crop}) // 2")
        if any(not v.is_integer() for v in a):
            return "pixel positions are whole numbers"
        return f"({a[0]:g}, {a[1]:g}) is not the corner of the centre crop"
    return _verdict("exercise 11.2", answer, check)
