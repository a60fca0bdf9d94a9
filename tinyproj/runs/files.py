"""Atomic files and training checkpoints (rule 7 of docs/design.md).

Every file is written to a temporary name in the same folder and then renamed
over the target with ``os.replace``, which is atomic on POSIX and Windows: an
interrupted write leaves either the old file or the new one, never half of one.

A checkpoint is one ``.npz`` file: the model's ``state_dict`` under
``model/<name>``, the optimizer's state arrays under ``optim/<i>/<key>``, and
everything else (epoch, step, the generator's state, the optimizer's scalar
state, running sums of the epoch in progress) as JSON under ``meta``.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import re
import zipfile
from pathlib import Path

import numpy as np  # host-side file format; arrays are moved to the host first

from .. import backend
# the atomic write lives with the data layer (prepare-imagenet writes its mark with it); runs
# uses it for every file it writes, with the same permissions rule (the user's umask)
from ..data.files import atomic_write_bytes, umask_mode

__all__ = ["atomic_write_bytes", "atomic_write_text", "append_jsonl", "read_jsonl",
           "save_checkpoint", "load_checkpoint", "load_checkpoint_meta", "rng_state",
           "set_rng_state", "remove_stale_temps", "folder_lock"]


def atomic_write_text(path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


_TEMP = re.compile(r"^\.(?P<name>.+)\.[A-Za-z0-9_]{6,}\.tmp$")


def remove_stale_temps(folder, names) -> list:
    """Remove the temporary files that an interrupted atomic write of ``names`` left behind.

    A process killed with ``kill -9`` in the middle of :func:`atomic_write_bytes` leaves
    ``.<name>.<random>.tmp`` beside the target (possibly full size). Only files of exactly
    that pattern for one of ``names`` (files this code writes, e.g. ``checkpoint.npz``) are
    removed; call it while holding the folder's lock (:func:`folder_lock`), so no live
    writer's temporary file is touched. Returns the removed paths.
    """
    folder = Path(folder)
    removed = []
    if not folder.is_dir():
        return removed
    for path in folder.iterdir():
        match = _TEMP.match(path.name)
        if match and match.group("name") in names and path.is_file():
            path.unlink()
            removed.append(path)
    return removed


@contextlib.contextmanager
def folder_lock(folder, what: str = "a run"):
    """Hold an exclusive lock on ``folder`` (its ``.lock`` file) or fail at once.

    Two processes training in one run folder would overwrite each other's checkpoints;
    the second one is stopped with an error instead. The lock is released when the
    process ends, however it ends (``flock`` locks die with the process).
    """
    try:
        import fcntl
    except ImportError:                       # Windows: no advisory locks, no check
        yield
        return
    folder = Path(folder)
    fd = os.open(folder / ".lock", os.O_RDWR | os.O_CREAT, umask_mode())
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            from ..errors import UserError
            raise UserError(f"{folder} is in use by another tinyproj process ({what}); wait "
                            "for it to finish, or use another folder") from None
        yield
    finally:
        os.close(fd)


def read_jsonl(path) -> list:
    """The JSON objects of a ``.jsonl`` file, one per line ([] if it does not exist)."""
    path = Path(path)
    if not path.exists():
        return []
    rows = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise ValueError(f"{path}:{n} is not valid JSON ({err}); the file is corrupt — "
                                 "remove that line or the file") from None
    return rows


def append_jsonl(path, row: dict) -> None:
    """Append one JSON object as a line, rewriting the file atomically."""
    rows = read_jsonl(path) + [row]
    atomic_write_text(path, "".join(json.dumps(r, sort_keys=False) + "\n" for r in rows))


def rng_state(rng) -> dict:
    """The state of the run's generator as JSON-able data (for exact resume).

    NumPy's: its bit generator's state. A device run's ``PhiloxGenerator``: its
    (seed, stream) pair (one copy from the device). Any other generator (CuPy's own, whose
    state lives on the GPU with no public way to save it) gives ``{"kind": "unsupported"}``,
    and a resumed run draws different numbers from there on (training says so).
    """
    from ..kernels.generator import PhiloxGenerator
    if isinstance(rng, np.random.Generator):
        return {"kind": "numpy", "state": rng.bit_generator.state}
    if isinstance(rng, PhiloxGenerator):
        return {"kind": "philox", "state": rng.state}
    return {"kind": "unsupported"}


def set_rng_state(rng, state: dict) -> bool:
    """Restore a state saved by :func:`rng_state`; False if this generator cannot take it (a
    state of another kind: a checkpoint of another backend, or one that saved none).
    ValueError for a state that is not such a record or a broken one."""
    from ..kernels.generator import PhiloxGenerator
    if not isinstance(state, dict):
        raise ValueError(f"the generator state is {state!r}, not a {{'kind': ...}} record")
    kind = state.get("kind")
    try:
        if kind == "numpy" and isinstance(rng, np.random.Generator):
            rng.bit_generator.state = state["state"]
            return True
        if kind == "philox" and isinstance(rng, PhiloxGenerator):
            rng.state = state["state"]
            return True
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"its {kind} generator state is broken: {err}") from None
    return False


def save_checkpoint(path, model_state: dict, optim_state: dict, meta: dict) -> Path:
    """Write model weights, optimizer state and ``meta`` (JSON) to one ``.npz``, atomically."""
    arrays = {f"model/{k}": backend.to_numpy(v) for k, v in model_state.items()}
    scalars = []
    for i, s in enumerate(optim_state["state"]):
        kept = {}
        for key, value in s.items():
            if hasattr(value, "shape") and hasattr(value, "dtype"):
                arrays[f"optim/{i}/{key}"] = backend.to_numpy(value)
            else:
                kept[key] = value
        scalars.append(kept)
    meta = dict(meta, optim_hyper=optim_state["hyper"], optim_t=optim_state["t"],
                optim_scalars=scalars)
    buf = io.BytesIO()
    np.savez(buf, meta=np.array(json.dumps(meta)), **arrays)
    return atomic_write_bytes(path, buf.getvalue())


_READ_ERRORS = (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile)


def _unreadable(path, err):
    from ..errors import UserError
    reason = str(err) or type(err).__name__
    return UserError(f"checkpoint {path} is unreadable or corrupt ({reason}); its weights "
                     "are lost for resuming, sweeping, walking or reporting — move it aside "
                     "(e.g. rename it to checkpoint.bad.npz) and train the run again with "
                     "`tinyproj train --out NEW_FOLDER`")


def _existing(path) -> Path:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}: nothing to resume (start without "
                                "--resume)")
    return path


def load_checkpoint_meta(path) -> dict:
    """Only the checkpoint's JSON ``meta`` (position, config, generator state): what a resume
    checks before it loads the arrays or writes anything. A truncated file fails here too
    (the zip directory is at its end)."""
    path = _existing(path)
    try:
        with np.load(path, allow_pickle=False) as f:
            meta = json.loads(str(f["meta"]))
    except _READ_ERRORS as err:
        raise _unreadable(path, err) from None
    if not isinstance(meta, dict):
        raise _unreadable(path, ValueError("its meta is not a JSON object"))
    return meta


def load_checkpoint(path):
    """Read a checkpoint: returns ``(model_state, optim_state, meta)``."""
    path = _existing(path)
    try:
        with np.load(path, allow_pickle=False) as f:
            meta = json.loads(str(f["meta"]))
            model_state, optim_arrays = {}, {}
            for key in f.files:
                if key.startswith("model/"):
                    model_state[key[len("model/"):]] = f[key]
                elif key.startswith("optim/"):
                    _, i, name = key.split("/", 2)
                    optim_arrays.setdefault(int(i), {})[name] = f[key]
    except _READ_ERRORS as err:
        raise _unreadable(path, err) from None
    try:
        states = [dict(s, **optim_arrays.get(i, {}))
                  for i, s in enumerate(meta.pop("optim_scalars"))]
        optim_state = {"hyper": meta.pop("optim_hyper"), "t": meta.pop("optim_t"),
                       "state": states}
    except (KeyError, TypeError, AttributeError) as err:
        from ..errors import UserError
        raise UserError(f"checkpoint {path} is not a tinyproj checkpoint (no optimizer state: "
                        f"{err}); move it aside and start the run in a new --out folder") from None
    return model_state, optim_state, meta
