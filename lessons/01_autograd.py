# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Lesson 1 — Autograd: the graph, backward, and how to check a gradient
#
# tinyproj differentiates *define-by-run*: every operation on a `Tensor` runs a small
# `Function` object that computes its result **and** remembers where the result came from.
# Calling `loss.backward()` walks that record backwards and applies the chain rule,
# one `Function.backward` at a time.
#
# In this lesson you will
#
# 1. build a small graph by hand, `y = (a*b + exp(c)).sum()`, and look at it;
# 2. run `backward()` and compare the gradients with calculus done by hand;
# 3. see how a broadcast bias gets its gradient summed back to its own shape;
# 4. meet the three rules of a second `backward()`: gradients accumulate, the graph is freed,
#    `retain_graph=True` keeps it;
# 5. switch recording off with `no_grad()` and cut a tensor out of the graph with `detach()`;
# 6. write your own `Function` (a sigmoid), check its gradient numerically with `gradcheck`,
#    and watch `gradcheck` catch a deliberately wrong backward;
# 7. learn where to put a breakpoint to watch backpropagation happen.
#
# Run it with `python lessons/01_autograd.py` (add `TINYPROJ_QUICK=1` for the quick mode the
# tests use), or open it as a notebook (see `lessons/README.md`).
# The code it explores lives in `tinyproj/tensor.py` (Tensor, backward),
# `tinyproj/function.py` (Function, the node every op is) and `tinyproj/functional/` (the
# ops). Keep `tinyproj/tensor.py` open beside this lesson.

# %%
import inspect
import os
import sys

import numpy as np

try:
    import _quick  # noqa: F401  (makes `import tinyproj` find this checkout; see lessons/_quick.py)
except ModuleNotFoundError:  # a notebook whose working folder is not lessons/
    sys.path.insert(0, os.path.join(os.environ.get("TINYPROJ_ROOT", os.getcwd()), "lessons"))
    import _quick  # noqa: F401
import tinyproj as tp
import tinyproj.functional as F
from tinyproj.gradcheck import GradcheckError, gradcheck
from tinyproj.tensor import GraphFreedError

# Quick mode (used by the tests) shrinks the sizes so the lesson runs in a few seconds.
QUICK = os.environ.get("TINYPROJ_QUICK", "0") == "1" or "--quick" in sys.argv
# Set TINYPROJ_BREAK=1 to stop in the debugger inside our own Function's backward (section 7).
BREAK = os.environ.get("TINYPROJ_BREAK", "0") == "1"

np.set_printoptions(precision=4, suppress=True)
print(f"quick mode: {QUICK}   break in backward: {BREAK}   backend: {tp.backend.name()}")

# %% [markdown]
# ## 1. Build a small graph by hand
#
# `tp.tensor(data, requires_grad=True)` makes a **leaf**: a tensor nobody computed, whose
# gradient we want. Python floats become float32, the framework's default dtype.
# The `name=` is only for printing.

# %%
a = tp.tensor([1.0, 2.0, 3.0], requires_grad=True, name="a")
b = tp.tensor([4.0, 5.0, 6.0], requires_grad=True, name="b")
c = tp.tensor([0.0, 1.0, 2.0], requires_grad=True, name="c")

# Each line below runs one Function (Mul, Exp, Add, Sum) and records it in the graph.
ab = a * b          # Mul
ab.name = "ab"
ec = c.exp()        # Exp
ec.name = "ec"
s = ab + ec         # Add
s.name = "s"
y = s.sum()         # Sum: a scalar, the "loss"
y.name = "y"

# The repr of a computed tensor names the op that created it (op=...).
for t in (a, b, c, ab, ec, s, y):
    print(t)
print("y =", y.item())

# %% [markdown]
# ### The creator chain and the generations
#
# A computed tensor points to its `creator` (the Function that made it); the Function points to
# its `inputs`. Following `creator → inputs → creator → ...` from `y` walks the whole graph down to
# the leaves, whose `creator` is `None`.
#
# Every tensor and Function carries a **generation** number: a leaf has generation 0, a Function's
# generation is the newest (largest) generation among its inputs, and its outputs get one more.
# `backward()` visits Functions in *decreasing* generation, which guarantees that a Function runs
# only after every Function that used its output has handed its gradient down (a topological
# order).

# %%
def show_graph(t, depth=0):
    """Print the graph below tensor ``t``, one tensor per line, inputs indented."""
    pad = "    " * depth
    if t.creator is None:
        print(f"{pad}{t}   generation {t.generation} (leaf)")
        return
    f = t.creator
    print(f"{pad}{t}   generation {t.generation}, made by {f.name} (Function generation {f.generation})")
    for x in f.inputs:            # the Function's input tensors
        show_graph(x, depth + 1)


show_graph(y)

# The order backward() will visit the Functions: collect them all, newest generation first.
# (Tensor.backward keeps them in a heap keyed by (-generation, id); Functions of equal
# generation, like Mul and Exp here, are independent of each other and may come in either order.)
def functions_of(t):
    found, todo = {}, [t.creator]
    while todo:
        f = todo.pop()
        if f is not None and id(f) not in found:
            found[id(f)] = f
            todo.extend(x.creator for x in f.inputs)
    return sorted(found.values(), key=lambda f: (-f.generation, id(f)))


print("backward visits:", " -> ".join(f"{f.name}(gen {f.generation})" for f in functions_of(y)))

# %% [markdown]
# ## 2. `backward()` and the calculus by hand
#
# $y = \sum_i (a_i b_i + e^{c_i})$, so by hand
# $\partial y/\partial a_i = b_i$, $\partial y/\partial b_i = a_i$, $\partial y/\partial c_i = e^{c_i}$.
#
# Before calling `backward()` we wrap each Function's `backward` so that it prints what it
# receives — a breakpoint that prints instead of stopping. (`Tensor.backward` calls
# `func.backward(*gys)`; an attribute set on the instance is found before the class's method.)

# %%
def trace(func):
    """Make ``func.backward`` print the upstream gradient it gets and what it returns."""
    original = func.backward

    def traced(*gys):
        gxs = original(*gys)
        outs = gxs if isinstance(gxs, tuple) else (gxs,)
        print(f"  {func.name:4s} (gen {func.generation}) got dy = {gys[0]}  ->  returns "
              + ", ".join("None" if g is None else str(g) for g in outs))
        return gxs

    func.backward = traced


for f in functions_of(y):
    trace(f)

print("backward():")
y.backward()                  # dy/dy = 1 starts the chain

print("a.grad =", a.grad, "  by hand b      =", b.numpy())
print("b.grad =", b.grad, "  by hand a      =", a.numpy())
print("c.grad =", c.grad, "  by hand exp(c) =", np.exp(c.numpy()))
# Gradients live where the arrays live — on a GPU that is device memory; NumPy needs them on the
# host, so `host(g)` copies a gradient down before NumPy compares it (on NumPy it is a no-op).
host = tp.backend.to_numpy
assert np.allclose(host(a.grad), b.numpy()) and np.allclose(host(b.grad), a.numpy())
assert np.allclose(host(c.grad), np.exp(c.numpy()))
# Gradients are plain arrays (numpy here, cupy on the GPU), not Tensors.
print("type of a.grad:", type(a.grad).__name__, a.grad.dtype)

# %% [markdown]
# ## 3. Broadcasting: a bias of shape (3,) added to a (4, 3) batch
#
# `x + bias` copies the bias into each of the 4 rows (NumPy broadcasting). Each copy receives
# its share of the upstream gradient, so the bias's gradient is the **sum over the rows**: the
# backward of broadcasting is a sum. `F.sum_to` in `tinyproj/functional/elementwise.py` does it,
# and `Tensor.backward` refuses a gradient whose shape differs from its input's.

# %%
x = tp.tensor(np.arange(12.0).reshape(4, 3), requires_grad=True, name="x")
bias = tp.tensor([0.1, 0.2, 0.3], requires_grad=True, name="bias")
g = np.array([[1.0, 0.0, 2.0],        # a fixed weighting, so that the gradient reaching
              [1.0, 1.0, 2.0],        # (x + bias) is g itself and not all ones
              [1.0, 0.0, 2.0],
              [1.0, 1.0, 2.0]], dtype=np.float32)

out = x + bias                         # (4, 3) + (3,) -> (4, 3)
loss = (out * g).sum()                 # d loss / d out = g
loss.backward()

print("out.shape:", out.shape, "  bias.shape:", bias.shape)
print("x.grad (= g):\n", x.grad)
print("bias.grad:", bias.grad, "shape", bias.grad.shape, "  = g summed over rows:", g.sum(axis=0))
print("F.sum_to(g, (3,)) :", F.sum_to(g, (3,)))
print("F.sum_to(g, (4,1)):", F.sum_to(g, (4, 1)).ravel(), "(a (4,1) bias would get row sums)")
assert np.allclose(host(bias.grad), g.sum(axis=0)) and bias.grad.shape == (3,)

# %% [markdown]
# ## 4. A second `backward()`: accumulate, free, `retain_graph`
#
# * Gradients **accumulate** into `.grad` of the leaves (they are added, not overwritten). This
#   is what you want when a weight is used twice, and a bug when you forget to reset `.grad`
#   between training steps (optimizers have `zero_grad()`; by hand, set `t.grad = None`).
# * `backward()` **frees** the graph below the output (each Function drops its saved arrays), so
#   the memory of a training step is released. Going through it again raises `GraphFreedError`.
# * `backward(retain_graph=True)` keeps the graph so that you can call `backward()` once more.

# %%
w = tp.tensor([1.0, 2.0, 3.0], requires_grad=True, name="w")
loss = (w * w).sum()                   # d loss / dw = 2w = [2, 4, 6]

loss.backward(retain_graph=True)       # keep the graph for a second pass
print("after 1st backward (retain_graph=True):", w.grad)
loss.backward()                        # the same gradient is ADDED again; this call frees the graph
print("after 2nd backward                    :", w.grad, " (accumulated: 2 × 2w)")
try:
    loss.backward()                    # the graph is gone
except GraphFreedError as err:
    print("3rd backward raised GraphFreedError:", err)

# Accumulation across two different losses that share a leaf (the usual case in practice):
w.grad = None                          # reset, as an optimizer's zero_grad() would
(w * 3.0).sum().backward()             # d/dw = 3
(w * w).sum().backward()               # d/dw = 2w
print("two losses, one leaf: w.grad =", w.grad, " = 3 + 2w =", 3 + 2 * w.numpy())

# %% [markdown]
# ## 5. `no_grad()` and `detach()`
#
# Inside `with tp.no_grad():` nothing is recorded: results have no creator and do not require
# grad, and Functions drop whatever they saved for backward at once. Use it for evaluation and
# for the weight update itself (`w.data -= lr * w.grad` must not become part of the graph).
#
# `t.detach()` returns a new leaf that shares `t`'s data but is cut off from the graph: gradient
# stops there. Below, `(w * w.detach()).sum()` treats the second factor as a constant, so the
# gradient is `w`, not `2w`.

# %%
w = tp.tensor([1.0, 2.0, 3.0], requires_grad=True, name="w")
with tp.no_grad():
    z = w * 2.0
print("under no_grad:", z, "creator:", z.creator)
try:
    z.sum().backward()
except RuntimeError as err:
    print("backward on it raised RuntimeError:", err)

d = w.detach()
print("detached:", d, " shares memory with w:", np.shares_memory(d.data, w.data))
(w * w.detach()).sum().backward()
print("grad of sum(w * w.detach()) =", w.grad, " (= w, not 2w)")
assert np.allclose(host(w.grad), w.numpy())

# A plain SGD step, written the way optim.SGD does it: update the data outside the graph.
lr = 0.1
with tp.no_grad():
    w.data -= lr * w.grad
w.grad = None
print("after one SGD step w =", w.numpy())

# %% [markdown]
# ## 6. Your own Function: a sigmoid, checked with `gradcheck`
#
# A `Function` subclass implements two methods on **arrays** (not Tensors):
#
# * `forward(*xs)` computes the output and saves on `self` what backward will need;
# * `backward(gy)` receives the upstream gradient dL/dy (same shape as y) and returns
#   dL/dx = dL/dy · dy/dx, one array per input.
#
# For $y = \sigma(x) = 1/(1+e^{-x})$ we have $dy/dx = y(1-y)$, so forward saves $y$.
# Array code asks the backend for its array module (`xp`), so the same Function runs on NumPy
# and CuPy. A Function object holds one call's state: make a new one per call (`Sigmoid()(x)`).

# %%
class Sigmoid(tp.Function):
    """y = 1 / (1 + exp(−x));  dy/dx = y·(1 − y)."""

    break_in_backward = False           # switched on in section 7 when TINYPROJ_BREAK=1

    def forward(self, x):
        xp = tp.backend.xp_of(x)        # numpy or cupy, whichever owns x
        self.y = 1.0 / (1.0 + xp.exp(-x))
        return self.y

    def backward(self, gy):
        if self.break_in_backward:
            breakpoint()                # (Pdb) p gy.shape / p self.y / up / c — see section 7
        return gy * self.y * (1.0 - self.y)


def sigmoid(x):
    return Sigmoid()(x)                 # a fresh Function for every call


v = tp.tensor([-2.0, 0.0, 2.0], requires_grad=True, name="v")
sv = sigmoid(v)
print(sv)
sv.sum().backward()
by_hand = sv.numpy() * (1 - sv.numpy())
print("v.grad =", v.grad, "  y(1-y) by hand =", by_hand)

# %% [markdown]
# ### What `gradcheck` does
#
# It compares the analytic gradient (from `backward`) with a **numerical** one from central
# differences, $\partial L/\partial x_k \approx (L(x + \varepsilon e_k) - L(x - \varepsilon e_k)) / 2\varepsilon$,
# one input element at a time. It works in float64 (in float32 the rounding error of the
# difference would swamp the comparison). Here is one element done by hand:

# %%
x64 = np.array([-2.0, 0.0, 2.0])                     # float64
eps = 1e-6
k = 2
e_k = np.zeros_like(x64)
e_k[k] = eps
L = lambda arr: sigmoid(tp.Tensor(arr)).sum().item()  # noqa: E731
numeric = (L(x64 + e_k) - L(x64 - e_k)) / (2 * eps)
print(f"element {k}: numerical {numeric:.10f}   analytic {by_hand[k]:.10f}")

# %% [markdown]
# `gradcheck(fn, inputs)` (in `tinyproj/gradcheck.py`) does this for every input: `fn` maps
# Tensors to a Tensor, `inputs` is a list of float64 arrays. A non-scalar output is reduced to
# $L = \sum \mathrm{out} \cdot R$ with a fixed random $R$, so every output element counts. Inputs
# with at most 200 elements are checked element by element; larger ones along a few random
# directions $d$ (comparing $\langle \nabla L, d\rangle$ with a central difference along $d$),
# which is far cheaper and still catches a wrong gradient. When the two disagree beyond
# `atol + rtol·|numerical|` it raises `GradcheckError`, showing both gradients; otherwise it
# returns a result that prints as a summary.

# %%
rng = np.random.default_rng(0)
shape = (3, 4) if QUICK else (20, 30)
x_check = rng.standard_normal(shape)                 # float64, as gradient checks want
result = gradcheck(sigmoid, [x_check])
print(f"input shape {shape}:", result)
assert result.ok


# %% [markdown]
# Now a deliberately wrong backward — the classic slip of forgetting the factor $(1-y)$.
# `gradcheck` catches it and its message shows the analytic and numerical gradients side by side.

# %%
class SigmoidForgotFactor(Sigmoid):
    """A WRONG sigmoid: backward returns gy·y instead of gy·y·(1 − y)."""

    def backward(self, gy):
        return gy * self.y


def wrong_sigmoid(t):
    return SigmoidForgotFactor()(t)


try:
    gradcheck(wrong_sigmoid, [x_check[:2, :3]])
    raise AssertionError("gradcheck should have failed")
except GradcheckError as err:
    print("gradcheck caught the wrong backward:\n")
    print(err)

# %% [markdown]
# ## 7. Where to put a breakpoint in backward
#
# Two places show backpropagation at work:
#
# * **`Tensor.backward` in `tinyproj/tensor.py`**, on the line `gxs = func.backward(*gys)` inside
#   the `while funcs:` loop. It is reached once per Function, in the order backward visits them;
#   there `func` is the Function, `gys` its upstream gradients, `funcs` the heap of those still to
#   come. A conditional breakpoint such as `func.name == "Conv2d"` stops at one op only.
# * **An op's own `Function.backward`**, e.g. `Conv2d.backward` in `tinyproj/functional/conv.py`
#   or `Exp.backward` in `tinyproj/functional/elementwise.py`: there you see one op's chain rule.
#
# The cell below finds the exact lines in the source you are running (so they stay right when the
# files change).

# %%
from tinyproj.functional.conv import Conv2d            # noqa: E402
from tinyproj.functional.elementwise import Exp        # noqa: E402


def where(func, marker=None, absolute=False):
    """'path:line' of ``func`` (or of its first line containing ``marker``), relative to the repo."""
    try:
        lines, start = inspect.getsourcelines(func)
    except (OSError, TypeError):            # e.g. a class defined in a notebook cell
        return "(defined in this lesson)"
    offset = 0 if marker is None else next(i for i, s in enumerate(lines) if marker in s)
    path = os.path.abspath(inspect.getsourcefile(func))
    if not absolute:
        path = os.path.relpath(path, _quick.ROOT)
    return f"{path}:{start + offset}"


loop_line = where(tp.Tensor.backward, "func.backward(")
loop_line_abs = where(tp.Tensor.backward, "func.backward(", absolute=True)  # pdb wants this
print("the backward loop        :", loop_line, "  (gxs = func.backward(*gys))")
print("Conv2d.backward          :", where(Conv2d.backward))
print("Exp.backward             :", where(Exp.backward))
print("our Sigmoid.backward     :", where(Sigmoid.backward, "breakpoint()"))
print(f"""
How to stop there:
  * in an IDE (VS Code, PyCharm): click in the margin of that line, run this file under the debugger;
  * from a terminal:
        python -m pdb lessons/01_autograd.py
        (Pdb) b {loop_line_abs}, func.name == "Sigmoid"
        (Pdb) c
  * in your own code: write breakpoint() where you want to stop — as Sigmoid.backward does when
        TINYPROJ_BREAK=1 python lessons/01_autograd.py
    At the (Pdb) prompt try:  p gy.shape   p self.y   up   p func.name, func.generation   c
    (PYTHONBREAKPOINT=0 turns every breakpoint() off.)""")

# One backward through our Sigmoid with the breakpoint switched on only if TINYPROJ_BREAK=1;
# otherwise this just runs.
Sigmoid.break_in_backward = BREAK
u = tp.tensor([0.5, -0.5], requires_grad=True)
(sigmoid(u) * 2.0).sum().backward()
Sigmoid.break_in_backward = False
print("\nu.grad =", u.grad)

# %% [markdown]
# ## Summary
#
# * Every op records a Function as its output's `creator`; `generation` orders the graph and
#   `backward()` visits Functions newest first, calling each one's `backward`.
# * Broadcasting in forward means summing in backward (`sum_to`).
# * Gradients accumulate in `.grad`; `backward()` frees the graph unless `retain_graph=True`.
# * `no_grad()` records nothing; `detach()` makes a constant that shares the data.
# * A new op is a `Function` with `forward`/`backward` on arrays; `gradcheck` in float64 tells you
#   whether the backward is right before you build anything on it.
#
# Next: lesson 2 builds a convolution out of exactly these pieces (im2col, one matrix product,
# and its adjoint col2im).

# %%
print("\nLesson 1 done.")

# %% [markdown]
# ## Exercises you can check
#
# Replace each `...` by your answer and run the cell: the checker prints **correct**, or what is
# off, or *not answered yet*. The checkers live in `lessons/exercises.py`; they compute the right
# answer with tinyproj itself (there is no solution file), so try first, then read them.
#
# 1. By hand: the gradient of L = Σ 3·xᵢ² at x = [1, −2, 0.5] (an array of three numbers).
# 2. Write the backward of `Cube` (y = x³) below; the checker runs `gradcheck` on it.
# 3. x has shape (4, 3), b has shape (3,) and L = Σ (x + b). What is `b.grad`? (Section 3.)

# %%
from exercises import check_01_1, check_01_2, check_01_3  # noqa: E402  (lessons/exercises.py)

answer_1 = ...                  # e.g. np.array([..., ..., ...])
check_01_1(answer_1)


# %%
class Cube(tp.Function):
    """y = x³ — forward is done; backward is yours."""

    def forward(self, x):
        self.x = x
        return x ** 3

    def backward(self, gy):
        return ...              # dL/dx = dL/dy · dy/dx


check_01_2(Cube)

# %%
answer_3 = ...                  # b.grad, an array
check_01_3(answer_3)
