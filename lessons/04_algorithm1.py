# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Lesson 4 — Algorithm 1: one training step for a weight projection, line by line
#
# Merolla et al. (2016) train a network whose forward and backward passes use *projected*
# weights `P = Proj(W)` (for example `Sign(W)`, two values per layer), while the update goes
# to the full-precision weights `W`, which are then clipped to a per-layer bound `c_k`:
#
# ```
#  1: Project weights:
#  2: for k = 1 to N do
#  3:     P_k = Proj(W_k^t, θ)                  // standard backprop: Proj = None, P_k = W_k^t
#  5: O = Forward(I, P)                         // forward with the projected weights
#  7: ∂L/∂P = Backward(∂L/∂O, P)                // backward, also with respect to P
#  9: Ŵ = Update(W^t, ∂L/∂P, λ)                 // the update goes to W (SGD, Adam, ...)
# 11: for k = 1 to N do
# 12:     W_k^{t+1} = max(min(Ŵ_k, c_k), −c_k)  // standard backprop: c_k = ∞
# ```
#
# In `tinyproj/algorithm1.py` each group of lines is one small function, and
# `train_step` calls them in order:
#
# | lines | function | what it does to the model |
# | --- | --- | --- |
# | 1–3 | `project(weights, step_projection, rng)` | `p.data = P_k` for each weight; returns the `W_k` it took out |
# | 5 | `forward(model, x, y, loss_fn)` | scores and loss, computed with P |
# | 7 | `backward(model, loss)` | `p.grad = ∂L/∂P_k` |
# | 9 | `update(weights, saved_W, optimizer)` | `p.data = W_k` again, then `optimizer.step()` moves W by ∂L/∂P |
# | 11–12 | `clip(weights, bounds)` | `W_k` clipped in place to `[−c_k, c_k]` |
#
# In this lesson we run one step by calling those functions ourselves and print a few
# weights after each line, check that it is exactly what `train_step` does, train a few
# steps, and see that with projection None and no clipping it is plain backprop.
#
# Run it with `python lessons/04_algorithm1.py` (`TINYPROJ_QUICK=1` for the quick mode) or
# open it as a notebook. Keep `tinyproj/algorithm1.py` open beside it.

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
from tinyproj import algorithm1, backend, clipping, data, models, optim, projections

QUICK = _quick.quick()
np.set_printoptions(precision=5, suppress=True, linewidth=100)
print(f"quick mode: {QUICK}   backend: {backend.name()}")

# %% [markdown]
# ## 1. A tiny network and one minibatch
#
# The network is the paper's CIFAR-10 network (Figure 1A) at 1/16 of its width: 8, 16 and
# 32 channels instead of 128, 256 and 512, and 64 hidden units instead of 1024. Its layers
# keep their names (`conv1` … `conv6`, `fc7` … `fc9`, batch norm `bn1` … `bn9`).
#
# The minibatch is 50 (20 in quick mode) real CIFAR-10 training images when they can be found (in
# `$TINYPROJ_DATA/cifar-10-batches-py`, or `./datasets/...`), each normalized by global
# contrast normalization (the paper also whitens with ZCA fit on the whole training set,
# which we skip for one batch); otherwise made-up images from
# `data.synthetic_classification`.

# %%
BATCH = 20 if QUICK else 50   # the paper's batch size is 50


def one_cifar_batch(n):
    """n CIFAR-10 training images (GCN, scale 55) and labels, or None if the files are absent."""
    path = data.cifar.cifar10_folder() / "data_batch_1"
    if not path.is_file():
        return None
    pixels, labels = data.read_cifar_batch(path)
    x = data.global_contrast_normalize(pixels[:n].astype(np.float32), scale=55.0)
    return x.reshape(n, 3, 32, 32).astype(np.float32), labels[:n]


found = one_cifar_batch(BATCH)
if found is not None:
    x, y = found
    print(f"real CIFAR-10 images from {data.cifar.cifar10_folder()}")
else:
    x, y = data.synthetic_classification(BATCH, shape=(3, 32, 32), num_classes=10, seed=0)
    print("CIFAR-10 not found: using synthetic images (set TINYPROJ_DATA to use the real ones)")
print("x", x.shape, x.dtype, " y", y[:10], "...")


def fresh_model():
    """The same initial network every time (seeded generator, rule 5)."""
    return models.bc_cifar10(width=1 / 16, rng=backend.make_rng(0))


model = fresh_model()
print(model)

# %% [markdown]
# The weights Algorithm 1 works on are the parameters with two or more dimensions
# (conv and linear weights). Batch-norm γ and β are trained normally, never projected or
# clipped. The clip bounds are `c_k = f · std(Glorot initial weights of layer k)` with
# `f = 0.5`; they depend only on the shape of each layer.

# %%
weights = algorithm1.weight_params(model)
bounds = clipping.clip_bounds(model, f=0.5)
for name, p in weights.items():
    print(f"{name:14s} shape {str(tuple(p.shape)):18s} c_k = {bounds[name]:.5f}")
print("not projected, not clipped:", [n for n, _ in model.named_parameters() if n not in weights])

# %% [markdown]
# ## 2. One step, line by line
#
# We follow one layer, `fc8.weight`, and print its first few weights after every line.
# The projection is `Sign` (Tr-Sign-C), the optimizer Adam with the paper's learning rate
# 0.003, the loss the square hinge loss on ±1 one-vs-all targets.

# %%
LAYER, SHOW = "fc8.weight", (0, slice(0, 6))
rng = backend.make_rng(1)
optimizer = optim.Adam(model.parameters(), lr=0.003)
loss_fn = F.square_hinge_loss
projection = projections.parse("sign")
W_before = weights[LAYER].data.copy()
print(f"W_k^t      ({LAYER}[0, :6]):", W_before[SHOW])

# %% [markdown]
# **Lines 1–3 — project.** The projection's random parameters (none for Sign; β for
# `power:beta=U(0,2)`) are drawn once for the whole minibatch by `sample`. Then every
# `W_k` is swapped for `P_k = α_k · sign(W_k)` with `α_k = max |W_k|`. `project` returns the
# `W_k` arrays it took out of the model.

# %%
step_projection = projection.sample(rng)
saved_W = algorithm1.project(weights, step_projection, rng)
P = weights[LAYER].data
alpha = np.abs(saved_W[LAYER]).max()
print("P_k = Sign(W_k)      :", P[SHOW], f"  (alpha = {alpha:.5f})")
print("values taken by P_k  :", np.unique(P))
print("the model holds P now:", weights[LAYER].data is P, "  W_k kept aside:",
      np.array_equal(saved_W[LAYER], W_before))

# %% [markdown]
# **Line 5 — forward with P.** An ordinary forward pass; the layers read `p.data`, which
# is P.

# %%
scores, loss = algorithm1.forward(model, x, y, loss_fn)
print(f"loss L(O, T) with P: {loss.item():.5f}")

# %% [markdown]
# **Line 7 — backward.** An ordinary backward pass; what lands in `p.grad` is the gradient
# with respect to the weights the forward pass used: `∂L/∂P`.

# %%
algorithm1.backward(model, loss)
dL_dP = weights[LAYER].grad.copy()
print("dL/dP_k              :", dL_dP[SHOW])

# %% [markdown]
# **Line 9 — update W with ∂L/∂P.** `update` first puts `W_k` back (the very same array
# object, so Adam's state stays attached to it), then calls `optimizer.step()`: W moves,
# P is thrown away. At Adam's first step `m̂/√v̂ = g/|g|`, so every weight moves by
# almost exactly `−lr · sign(∂L/∂P)`.

# %%
algorithm1.update(weights, saved_W, optimizer)
W_hat = weights[LAYER].data.copy()
print("W_hat = Update(W, dL/dP):", W_hat[SHOW])
print("W_hat - W_k^t           :", (W_hat - W_before)[SHOW])
print("-lr * sign(dL/dP)       :", (-0.003 * np.sign(dL_dP))[SHOW])
print("the model holds W again :", weights[LAYER].data is saved_W[LAYER])

# %% [markdown]
# **Lines 11–12 — clip.** Every weight beyond its layer's bound is set to the bound.

# %%
W_hats = {name: p.data.copy() for name, p in weights.items()}   # Ŵ of every layer, to count
algorithm1.clip(weights, bounds)
W_next = weights[LAYER].data.copy()
c_k = bounds[LAYER]
print(f"c_k = {c_k:.5f}")
print("W_k^(t+1) = clip(W_hat) :", W_next[SHOW])
for name, p in weights.items():
    beyond = int((np.abs(W_hats[name]) > bounds[name]).sum())
    print(f"{name:14s} |W| max {np.abs(p.data).max():.5f} <= c_k {bounds[name]:.5f}  "
          f"({beyond} of {p.size} weights were clipped)")

# %% [markdown]
# (Glorot weights are uniform on `±√3 · std`, and `c_k = 0.5 · std`, so at the first step
# most weights lie beyond the bound and get clipped: the clip is a strong constraint.)
#
# ## 3. `train_step` does exactly these lines
#
# `train_step` also checks the loss (a NaN or inf stops it with a `FloatingPointError`
# *before* anything is updated) and can fill a `Trace` with copies of `W`, `P`, `∂L/∂P`,
# `Ŵ` and `W^{t+1}` of every layer. Run from the same start it gives the same numbers, to the
# last bit.

# %%
model2 = fresh_model()
optimizer2 = optim.Adam(model2.parameters(), lr=0.003)
trace = algorithm1.Trace()
loss2 = algorithm1.train_step(model2, x, y, loss_fn, optimizer2, "sign", bounds,
                              backend.make_rng(1), trace=trace, step=0)
rec = trace[LAYER]
print(f"loss {loss2:.5f} (by hand {loss.item():.5f})")
for key, ours in [("W", W_before), ("P", P), ("dL_dP", dL_dP), ("W_hat", W_hat),
                  ("W_next", W_next)]:
    print(f"trace[{LAYER!r}][{key!r}][0, :6] = {rec[key][SHOW]}   same as by hand: "
          f"{np.array_equal(rec[key], ours)}")

# %% [markdown]
# ## 4. Stop inside each line with a debugger
#
# Each line of the algorithm is a function of its own, so a debugger can stop inside each one
# while it works on the minibatch above and show its local variables. Two rules make a
# breakpoint fire when the function *runs*:
#
# * **Put it on a line of the body, not on the `def` line.** Python executes a `def` line once,
#   when it imports the module and creates the function; a breakpoint there stops at import
#   time and never again. A breakpoint *by name* (`b tinyproj.algorithm1.update`) avoids the
#   question: pdb stops at the function's first line each time it is called.
# * **Give pdb something it can find.** A name needs its module imported first (pdb runs Python
#   statements typed at its prompt, so `import` it there); a file needs its absolute path (pdb
#   looks a relative path up on `sys.path`, where the repository is not when pdb starts).
#
# The cell below prints both recipes for the source you are running. The first one, typed
# into pdb from a terminal, stops in `project`, `forward`, `backward`, `update` and `clip` in
# turn while section 2 runs them on the real minibatch, and prints a value in each
# (`tests/test_debugger.py` follows it as written).
#
# **In Jupyter** (JupyterLab, Notebook 7 or a VS Code notebook) the same pdb commands work in a
# cell that starts with `%%debug`; the notebook has already imported `algorithm1`, so no import:
#
# ```
# %%debug
# algorithm1.train_step(model2, x, y, loss_fn, optimizer2, "sign", bounds, backend.make_rng(1))
# ```
#
# then `b algorithm1.update`, `c`, `p sorted(saved_W)`, `n`, `q` at the `ipdb>` prompt.
# **With a visual debugger**: in VS Code open `tinyproj/algorithm1.py`, click left of one of the
# body lines printed below (not the `def` line), then *Debug Cell* in the notebook or *Python
# Debugger: Debug Python File* on this lesson (if it never stops in tinyproj's files, set
# `"justMyCode": false` in `launch.json`: tinyproj was installed without `pip install -e .`). In
# JupyterLab turn the debugger on (the bug icon of the notebook's toolbar), put a breakpoint in
# a cell on the line that calls `algorithm1.update(...)`, run the cell and press *Step In*.

# %%
import ast  # noqa: E402
import os  # noqa: E402
import textwrap  # noqa: E402


def body_line(fn):
    """``(absolute path, line)`` of the first statement of ``fn``'s body, after its docstring:
    where a breakpoint stops each time ``fn`` runs (its ``def`` line runs once, at import)."""
    source, first = inspect.getsourcelines(fn)
    body = ast.parse(textwrap.dedent("".join(source))).body[0].body
    doc = (isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
           and isinstance(body[0].value.value, str))
    statement = body[1] if doc and len(body) > 1 else body[0]
    return os.path.abspath(inspect.getsourcefile(fn)), first + statement.lineno - 1


# (lines of Algorithm 1, function, what to print when pdb stops in it)
PARTS = [("1-3", algorithm1.project, "p step_projection.spec, list(weights)[:3]"),
         ("5", algorithm1.forward, "p x.shape, y[:10]"),
         ("7", algorithm1.backward, "p loss.item()"),
         ("9", algorithm1.update, f'p weights["{LAYER}"].grad[0, :6]'),
         ("11-12", algorithm1.clip, f'p bounds["{LAYER}"], abs(weights["{LAYER}"].data).max()')]
print("From a terminal in the repository root (type what follows each (Pdb) prompt):\n")
print("$ python -m pdb lessons/04_algorithm1.py")
print("# pdb stops before the lesson's first line; import the module so that b can name it")
print("(Pdb) import _quick, tinyproj.algorithm1")
for _, fn, _ in PARTS:
    print(f"(Pdb) b tinyproj.algorithm1.{fn.__name__}")
for lines, fn, show in PARTS:
    print(f"# c: run on to the next stop, {fn.__name__} (line(s) {lines} of Algorithm 1)")
    print("(Pdb) c")
    print(f"(Pdb) {show}")
    if fn is algorithm1.update:
        print("# n: run one line (restore puts W back), then look again")
        print("(Pdb) n")
        print(f'(Pdb) p weights["{LAYER}"].data is saved_W["{LAYER}"]')
print("# q: quit (or `cl` and `y` to clear the breakpoints, then c to run the lesson to its end)")
print("(Pdb) q")
print("\nOr by file and line: an absolute path and a line of the body (for pdb, or to click on"
      " in an editor):")
for lines, fn, _ in PARTS:
    path, line = body_line(fn)
    code = inspect.getsourcelines(fn)[0][line - inspect.getsourcelines(fn)[1]].strip()
    print(f"  {fn.__name__}, line(s) {lines} of Algorithm 1, at `{code.split('  #')[0].strip()}`:")
    print(f"      b {path}:{line}")
# To stop inside the next step right here instead, uncomment the next line (then `s` to step
# into a call, `n` for the next line, `c` to go on):
# breakpoint()

# %% [markdown]
# ## 5. A few steps: the loss goes down
#
# Training with Sign and clipping on one fixed minibatch, the loss falls, although every
# forward pass sees only two values per layer.

# %%
STEPS = 5 if QUICK else 60
model3 = fresh_model()
opt3 = optim.Adam(model3.parameters(), lr=0.003)
rng3 = backend.make_rng(2)
losses = []
for t in range(STEPS):
    losses.append(algorithm1.train_step(model3, x, y, loss_fn, opt3, "sign", bounds, rng3, step=t))
print("loss per step:", np.round(losses, 4))
assert losses[-1] < losses[0], "the loss should go down on a fixed minibatch"

# %% [markdown]
# The network holds full-precision W, yet it was trained through Sign(W). Score the batch
# both ways (with the batch statistics of this minibatch, so batch norm needs no
# re-estimation here); `project_weights` swaps P in for a `with` block and puts W back.

# %%
# The labels y are a NumPy array on the host; `.numpy()` brings the scores there too (on a GPU
# they live in device memory, and NumPy and CuPy arrays do not mix).
with tp.no_grad():
    acc_W = float((model3(x).numpy().argmax(axis=1) == y).mean())
    with algorithm1.project_weights(model3, "sign", rng3):
        acc_P = float((model3(x).numpy().argmax(axis=1) == y).mean())
print(f"training-batch accuracy with W: {acc_W:.2f}   with Sign(W): {acc_P:.2f}")

# %% [markdown]
# ## 6. With Proj = None and c_k = ∞ it is standard backprop
#
# "This algorithm reduces to standard backprop when the projection is None and c_k = ∞."
# Check it bit for bit: one model trained by `train_step(..., "none", {}, ...)`, its twin by
# the textbook loop `zero_grad(); loss.backward(); step()`.

# %%
a, b = fresh_model(), fresh_model()
opt_a, opt_b = optim.Adam(a.parameters(), lr=0.003), optim.Adam(b.parameters(), lr=0.003)
for t in range(2 if QUICK else 3):
    la = algorithm1.train_step(a, x, y, loss_fn, opt_a, "none", {}, backend.make_rng(0), step=t)
    opt_b.zero_grad()
    lb = loss_fn(b(x), y)
    lb.backward()
    opt_b.step()
    print(f"step {t}: Algorithm 1 loss {la:.6f}   plain backprop loss {lb.item():.6f}")
same = all(np.array_equal(pa.data, pb.data)
           for (_, pa), (_, pb) in zip(a.named_parameters(), b.named_parameters()))
print("all parameters bit-identical:", same)
assert same

# %% [markdown]
# ## 7. From steps to a run: checkpoints, Ctrl-C and an exact resume
#
# `tinyproj.runs.training.train` (what `tinyproj train` runs) repeats `train_step` over
# epochs, evaluates, and writes a run folder: `config.json`, `metrics.jsonl` (one row per
# evaluation) and `checkpoint.npz` (weights, Adam's moments, the position in the epoch and the
# generator's state). A stop — Ctrl-C, or SIGTERM when a cluster's time runs out — is caught
# between two steps: the run saves a checkpoint and ends; `resume=True` (`--resume`) then
# continues to *bitwise* the same weights as a run that was never stopped, because the
# checkpoint holds everything the next step will read. `stop_at_step=` stops exactly as a
# Ctrl-C after that step would. This holds on a GPU too: there the run's generator is a
# counter-based one (Philox, `kernels/generator.py`) whose whole state is two numbers,
# (seed, stream), saved in the checkpoint; CuPy's own generator could not be saved.

# %%
import shutil  # noqa: E402
import signal  # noqa: E402

from tinyproj.runs import evaluation  # noqa: E402
from tinyproj.runs.config import make_config  # noqa: E402
from tinyproj.runs.files import load_checkpoint, read_jsonl, rng_state  # noqa: E402
from tinyproj.runs.training import TrainingInterrupted, train  # noqa: E402

RUN = os.path.join(_quick.out_dir(), "04_run")
# 120 synthetic training images in batches of 20: 6 steps per epoch, 2 epochs, an evaluation
# (batch norm re-estimated on 2 batches, 40 validation images scored) after each epoch
SMALL = dict(dataset="synthetic", width=1 / 16, train_subset=120, val_size=40, batch_size=20,
             epochs=2, lr=0.003, bn_batches=2, eval_batch_size=100, seed=0)
quiet = dict(progress=False, log=lambda *a: None)
print("what the checkpoint saves of this backend's generator:",
      rng_state(backend.make_rng(0))["kind"])   # numpy (PCG64) or philox (seed, stream)


def state(model):
    return {k: backend.to_numpy(v).copy() for k, v in model.state_dict().items()}


def same_state(m1, m2):
    s1, s2 = state(m1), state(m2)
    return all(np.array_equal(s1[k], s2[k]) for k in s1)


straight, straight_rows = train(make_config("tr-sign-c", **SMALL), **quiet)   # no folder

shutil.rmtree(RUN, ignore_errors=True)                  # the lesson's run is disposable
cfg = make_config("tr-sign-c", out=RUN, **SMALL)
try:
    train(cfg, stop_at_step=4, **quiet)
except TrainingInterrupted as stop:
    print("stopped:", stop)
print("the checkpoint's position:", {k: v for k, v in load_checkpoint(
    os.path.join(RUN, "checkpoint.npz"))[2]["pos"].items() if k != "order"})
resumed, _ = train(cfg, resume=True, **quiet)
print("resumed run bit-identical to the straight one:", same_state(straight, resumed))
assert same_state(straight, resumed)

# %% [markdown]
# An evaluation takes much longer than a step: with batch norm re-estimated exactly over
# every training image (`--bn-images all`) it can take minutes, while a cluster gives a job
# perhaps 30 s between SIGTERM and the kill. So the evaluation checks the same flag between
# two of its batches. A stop there drops the evaluation (the `with` blocks put the weights and
# batch-norm statistics back), saves the checkpoint with `pending_eval` set, and the resume
# runs that evaluation first — on the same weights with the same generator (seeded by the
# step), so it writes the same row the straight run wrote.
#
# We press Ctrl-C ourselves: the process sends itself SIGINT as the first evaluation starts
# scoring (POSIX systems only; elsewhere the cell only explains).

# %%
if os.name == "posix":
    real_error_rates = evaluation.error_rates

    def error_rates_then_ctrl_c(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGINT)             # "Ctrl-C", mid-evaluation
        return real_error_rates(*args, **kwargs)

    shutil.rmtree(RUN, ignore_errors=True)
    evaluation.error_rates = error_rates_then_ctrl_c
    try:
        train(cfg, **quiet)
    except TrainingInterrupted as stop:
        print("stopped:", stop)
    finally:
        evaluation.error_rates = real_error_rates
    pos = load_checkpoint(os.path.join(RUN, "checkpoint.npz"))[2]["pos"]
    print(f"checkpoint at step {pos['step']}, pending evaluation: {pos['pending_eval']}; "
          f"rows written so far: {len(read_jsonl(os.path.join(RUN, 'metrics.jsonl')))}")
    resumed, _ = train(cfg, resume=True, **quiet)
    drop = ("train_seconds", "eval_seconds")
    rows, rows_straight = ([{k: v for k, v in r.items() if k not in drop} for r in rs]
                           for rs in (read_jsonl(os.path.join(RUN, "metrics.jsonl")),
                                      straight_rows))
    print("the redone evaluation's row is the straight run's:", rows[0] == rows_straight[0])
    print("every row and weight the same:", rows == rows_straight and same_state(straight, resumed))
    assert rows[0] == rows_straight[0]
    assert rows == rows_straight and same_state(straight, resumed)

# %% [markdown]
# ## Exercises
#
# 1. Replace `"sign"` by `"stoch"` or `"stochm:gamma=0.5"` in section 3's `train_step` call
#    (the one that fills `trace`). Which values does `trace[LAYER]["P"]` take now, and why
#    does the comparison with the Sign step done by hand now print False? Run it twice with
#    the same seed (`make_rng(1)`), then with another seed.
# 2. Pass `{}` instead of `bounds` (no clipping, "NC"). How far do the weights drift from
#    the ±c_k box after 60 steps? What does that do to Sign(W) (α_k = max |W_k|)?
# 3. In `update`, move `restore(...)` *after* `optimizer.step()`. What gets updated then,
#    and which test in `tests/test_algorithm1.py` catches it?
# 4. Use `optim.SGD(..., lr=1.0)` for one step and check `Ŵ = W − ∂L/∂P` with the trace.

# %%
print("lesson 4 done")

# %% [markdown]
# ## Exercises you can check
#
# Replace each `...` by your answer and run the cell: the checker prints **correct**, or what is
# off, or *not answered yet*. The checkers live in `lessons/exercises.py`; they compute the right
# answer with tinyproj itself (there is no solution file), so try first, then read them.
#
# 1. One update and clip by hand (lines 9–12 of Algorithm 1 with plain SGD): full-precision
#    weights W = [0.35, −0.38, 0.1], gradient with respect to the *projected* weights
#    ∂L/∂P = [−1, 0.5, 2], learning rate 0.1, clip bound c = 0.4. What is W after the step?
# 2. Put the five parts of one step in order, using the names
#    "project", "forward", "backward", "update", "clip".

# %%
from exercises import check_04_1, check_04_2  # noqa: E402  (lessons/exercises.py)

answer_1 = ...                  # e.g. np.array([..., ..., ...])
check_04_1(answer_1)

# %%
answer_2 = ...                  # a list of the five names, in order
check_04_2(answer_2)
