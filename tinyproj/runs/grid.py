"""Result grids: resumable, shardable, safe with several writers, every row naming its network.

A *grid* is a list of points (dicts of settings: a layer and a level, a site and a σ), each
measured on one trained network. Every finished point is one JSON object on one line of a JSON
lines file. Both result grids of the project stand on this file: the weight-distortion sweeps
of Merolla et al. (``robustness/sweeps.py``) and the Walking Noise walks
(``walking_noise/walk.py``).

How a grid is used (``robustness/sweeps.py`` and ``walking_noise/walk.py`` do just this)::

    grid = Grid(RUN / "sweeps" / "addnorm.jsonl", key=lambda row: (row["layer"], row["level"]),
                shard="0/4", settings={"seed": 0, "draws": 3})
    network = network_fingerprint(model.state_dict())
    done = grid.finished(network)            # rows on file: reused, or refused when stale
    for point in grid.mine(all_points):      # this shard's share of the full grid
        if point not in done:
            grid.append(measure(point), network)     # one whole line, stamped with network

Files (e.g. ``RUN/sweeps/addnorm.jsonl``, ``OUT/walk.jsonl``)::

    <stem>.jsonl                     the grid's file (any number of unsharded writers)
    <stem>.shard-<i>-of-<n>.jsonl    shard i of n, beside it (0 <= i < n)
    replaced/<UTC time>/             files moved aside by a restart (never deleted)

Shards. Shard i of n does the grid points i, i+n, i+2n, … (round robin over the *full* grid,
in grid order), so every shard gets a similar mix of cheap and costly points and the split does
not depend on what is done already. Indices are 0-based, as SLURM hands them out with
``#SBATCH --array=0-<n-1>`` (``--shard $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT``).
Reading merges the grid's file and all its shard files; a point found twice is kept once (the
first: the unsharded file, then the shards by (n, i)).

Resume. A point already on file (same key, same network, same settings) is skipped, so a grid
stopped by Ctrl-C, a crash or a time limit resumes when run again; nothing is lost or repeated.
Callers draw each point's random numbers from its own key only (:func:`seed_words`), so a
point gives the same numbers alone, in a shard or in a full run. (Progress bars over the
points: :func:`tinyproj.runs.progress.progress_bar`, the one bar of every long loop.)

Every row names its network. :meth:`Grid.append` stamps each row with ``network``, the
fingerprint of the network measured (:func:`~tinyproj.runs.fingerprint.network_fingerprint`).
Rows on file whose ``network`` differs from the network measured now — the run was retrained in
its folder, another run was walked into the same output — are **refused, not recomputed**: a
:class:`~tinyproj.errors.UserError` names the file, both fingerprints and the fix (``--restart``
/ ``restart=True``, which moves the grid's files to ``replaced/<time>/``, or another output).
Refused because recomputing would leave a file that mixes two networks for every later reader,
while the error costs a second and deletes nothing. Rows without a fingerprint (written before
rows had one) and rows made with other *settings* than the current ones (the caller's
``settings``: seed, draws, test subset, …) are refused the same way.

Several writers. A row is appended with **one** ``os.write`` of the complete line to the file
opened with ``O_APPEND``, under an exclusive ``flock`` of that file, then ``fsync``. Concurrent
writers (several ``--layer`` processes, ``--jobs``) therefore never lose a row: nothing rewrites
the whole file (the old read-then-rewrite append kept 135 of 300 rows with parallel writers).
``flock`` dies with its process, so a killed writer never blocks the others. Where ``flock`` is
unsupported (Windows; Lustre mounted without ``-o flock``) appends go on unlocked: give each
process its own shard there, which is what shards are for.

Killed writers. No temporary files are made, so ``kill -9`` leaves no ``.tmp``. A writer killed
inside its ``write`` can leave at most one torn last line: readers ignore it (its point is simply
not done) and the next writer cuts it off, under the lock, before appending. ``.<file>.*.tmp``
files left by the former rewrite-the-file appends are removed by the next append to that grid
(no writer makes such files any more, so none of them can be in use).
"""
from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import time
from pathlib import Path

from ..errors import UserError
from .fingerprint import network_fingerprint

__all__ = ["Grid", "parse_shard", "shard_points", "shard_path", "grid_files", "read_rows",
           "append_row", "seed_words", "network_fingerprint", "NETWORK_FIELD"]

NETWORK_FIELD = "network"
"""The row field holding the fingerprint of the network the row measured."""


# ---------------------------------------------------------------------------------------------
# Shards and file names
# ---------------------------------------------------------------------------------------------
def parse_shard(text) -> tuple | None:
    """``"i/n"`` -> ``(i, n)`` with 0 <= i < n (0-based, like ``$SLURM_ARRAY_TASK_ID``).

    None and ``(i, n)`` tuples pass through (checked). Raises UserError with the usage.
    """
    if text is None:
        return None
    if isinstance(text, tuple):
        i, n = text
    else:
        match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", str(text))
        if not match:
            raise UserError(f"--shard takes i/n (shard i of n, 0 <= i < n), e.g. 0/4 ... 3/4 "
                            f"or $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT; got {text!r}",
                            flag="--shard")
        i, n = int(match.group(1)), int(match.group(2))
    if not (isinstance(i, int) and isinstance(n, int) and n >= 1 and 0 <= i < n):
        raise UserError(f"--shard i/n needs n >= 1 and 0 <= i < n (shards are numbered from 0, "
                        f"like #SBATCH --array=0-{max(n, 1) - 1}); got {i}/{n}", flag="--shard")
    return i, n


def shard_points(points: list, shard) -> list:
    """The grid points of shard ``(i, n)``: ``points[i::n]`` (all of them for None)."""
    shard = parse_shard(shard)
    return list(points) if shard is None else list(points)[shard[0]::shard[1]]


def shard_path(path, shard=None) -> Path:
    """``path`` itself, or for shard (i, n) ``<stem>.shard-<i>-of-<n><suffix>`` beside it."""
    path = Path(path)
    shard = parse_shard(shard)
    if shard is None:
        return path
    return path.with_name(f"{path.stem}.shard-{shard[0]}-of-{shard[1]}{path.suffix or '.jsonl'}")


def grid_files(path) -> list:
    """The existing files of the grid ``path``: ``path`` first, then its shards by (n, i)."""
    path = Path(path)
    suffix = path.suffix or ".jsonl"
    files = [path] if path.is_file() else []
    pattern = re.compile(re.escape(path.stem) + r"\.shard-(\d+)-of-(\d+)" + re.escape(suffix))
    shards = []
    if path.parent.is_dir():
        for p in path.parent.iterdir():        # not glob: a stem may hold [ or * itself
            m = pattern.fullmatch(p.name)
            if m and p.is_file():
                shards.append(((int(m.group(2)), int(m.group(1))), p))
    return files + [p for _, p in sorted(shards)]


# ---------------------------------------------------------------------------------------------
# One file: read, append
# ---------------------------------------------------------------------------------------------
def _parse(line: bytes):
    try:
        row = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        return None
    return row if isinstance(row, dict) else None


def read_rows(path) -> list:
    """The rows of one JSON lines file ([] if it does not exist).

    A last line without its newline that is not a whole JSON object is a row torn by a killed
    writer: it is ignored. Any other bad line raises a UserError naming file and line.
    """
    path = Path(path)
    if not path.is_file():
        return []
    *lines, tail = path.read_bytes().split(b"\n")
    rows = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        row = _parse(line)
        if row is None:
            raise UserError(f"{path}:{n} is not a JSON object on one line; the file is corrupt "
                            "(edited by hand?) — remove that line, or move the file aside")
        rows.append(row)
    if tail.strip() and _parse(tail) is not None:       # a whole last row, newline missing
        rows.append(_parse(tail))
    return rows


@contextlib.contextmanager
def _locked(fd):
    """Hold an exclusive flock on ``fd`` (blocking); unlocked where flock is unsupported."""
    try:
        import fcntl
    except ImportError:                         # Windows
        yield False
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
    except OSError as err:
        if err.errno in (errno.ENOLCK, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL):
            yield False                         # a file system without flock
            return
        raise
    try:
        yield True
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)


def _mend_tail(path: Path, fd: int) -> None:
    """The file does not end with a newline: cut off a torn row, or end a whole one."""
    data = path.read_bytes()                   # rare (after a kill), and grid files are small
    end = data.rfind(b"\n") + 1               # where the last line begins (0: the only line)
    if _parse(data[end:]) is None:
        os.ftruncate(fd, end)                  # a torn row: its point is not done
    else:
        os.write(fd, b"\n")                    # a whole row without its newline: keep it


def append_row(path, row: dict) -> None:
    """Append ``row`` as one line, safely with other writers (module docstring)."""
    path = Path(path)
    data = (json.dumps(row) + "\n").encode("utf-8")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)    # umask applies
    try:
        with _locked(fd):
            size = os.fstat(fd).st_size
            if size:
                with open(path, "rb") as f:
                    f.seek(size - 1)
                    if f.read(1) != b"\n":
                        _mend_tail(path, fd)
            view = memoryview(data)
            while view:          # one write; a short one only on a full disk or a signal
                view = view[os.write(fd, view):]
            os.fsync(fd)
    finally:
        os.close(fd)


# ---------------------------------------------------------------------------------------------
# The seed helper both grids share
# ---------------------------------------------------------------------------------------------
def seed_words(text: str) -> list:
    """Four 32-bit integers from sha256(text): a stable stand-in for a string in a seed.

    ``backend.make_rng([seed, tag, *seed_words(key)])`` gives a point its own generator that
    depends on its key only (not on the order or the process it runs in).
    """
    digest = hashlib.sha256(str(text).encode("utf-8")).digest()
    return [int.from_bytes(digest[i:i + 4], "little") for i in range(0, 16, 4)]


# ---------------------------------------------------------------------------------------------
# The grid
# ---------------------------------------------------------------------------------------------
class Grid:
    """The result file of one grid, its shard files, and the rules for using what is on file.

    path: the grid's file (``<stem>.jsonl``). key: ``row -> hashable``, a row's grid point.
    shard: ``"i/n"`` / ``(i, n)`` / None: which file :meth:`append` writes and which points
    :meth:`mine` keeps. settings: ``{field: value}`` every row must have (resume with other
    settings is refused); or settings_keys: fields all rows must agree on among themselves
    (a merge without current settings). fix: what the user can do about refused rows (said
    in every refusal); network_source: what "the network measured now" is, for messages.
    """

    def __init__(self, path, key, *, shard=None, settings: dict | None = None,
                 settings_keys=(), fix: str | None = None, network_source: str | None = None):
        self.path = Path(path)
        self.key = key
        self.shard = parse_shard(shard)
        self.settings = None if settings is None else dict(settings)
        self.settings_keys = tuple(self.settings) if self.settings is not None \
            else tuple(settings_keys)
        self.fix = fix or ("Run again with --restart (restart=True), which moves these files "
                           f"to {self.path.parent / 'replaced'}/<time>/, or write elsewhere.")
        self.network_source = network_source or "the network measured now"
        self._cleaned = False

    # -- reading ---------------------------------------------------------------------------
    @property
    def out(self) -> Path:
        """The file this process appends to: the grid's file or its shard's."""
        return shard_path(self.path, self.shard)

    def files(self) -> list:
        return grid_files(self.path)

    def _raw(self) -> list:
        return [(path, row) for path in self.files() for row in read_rows(path)]

    def rows(self) -> list:
        """Every row on file, unchecked, one per key (the first found)."""
        return self._dedupe(row for _, row in self._raw())

    def _dedupe(self, rows) -> list:
        out, seen = [], set()
        for row in rows:
            k = self.key(row)
            if k not in seen:
                seen.add(k)
                out.append(row)
        return out

    def finished(self, network=None, keys=None) -> dict:
        """``{key: row}`` of the rows on file that may be reused, after :meth:`check`.

        network: the fingerprint of the network measured now (None: not checked). keys: the
        points this call is about (None: every row on file is this grid's concern).
        """
        raw = self._raw()
        if keys is not None:
            keys = set(keys)
            raw = [(p, r) for p, r in raw if self.key(r) in keys]
        self.check(raw, network)
        return {self.key(r): r for r in self._dedupe(r for _, r in raw)}

    def check(self, raw, network=None) -> None:
        """Refuse (UserError) rows of another network, without one, or of other settings.

        raw: ``[(file, row), ...]``. See the module docstring for why refuse.
        """
        by_file = {}
        for path, row in raw:
            by_file.setdefault(path, []).append(row)
        reference = None if self.settings is None else (self.settings, None)
        for path, rows in by_file.items():
            if network is not None:
                bare = [r for r in rows if not r.get(NETWORK_FIELD)]
                if bare:
                    raise UserError(
                        f"{path} holds {len(bare)} row(s) without a network fingerprint "
                        "(written by an older tinyproj), so nothing tells which network they "
                        f"measured; they cannot be reused or merged. {self.fix}")
                other = sorted({r[NETWORK_FIELD] for r in rows} - {network})
                if other:
                    n = sum(r[NETWORK_FIELD] != network for r in rows)
                    raise UserError(
                        f"{path} holds {n} row(s) measured on another network (fingerprint "
                        f"{', '.join(other)}) than {self.network_source} ({network}): a "
                        "retrained run, or another run written to the same place. They are "
                        f"not used. {self.fix}")
            for row in rows:
                got = {k: row.get(k) for k in self.settings_keys}
                if reference is None:
                    reference = (got, path)
                    continue
                want, where = reference
                if got != want:
                    diff = ", ".join(f"{k}={got[k]!r} (now {want[k]!r})" if where is None
                                     else f"{k}: {want[k]!r} vs {got[k]!r}"
                                     for k in self.settings_keys if got[k] != want[k])
                    if where is None:
                        raise UserError(f"{path} was made with other settings: {diff}. Run "
                                        f"again with the same settings to resume. {self.fix}")
                    raise UserError(f"{path.name} has rows made with other settings than "
                                    f"{where.name} ({diff}); they cannot be merged. {self.fix}")

    # -- writing ---------------------------------------------------------------------------
    def mine(self, points: list) -> list:
        """This shard's share of the full grid ``points`` (all of them when unsharded)."""
        return shard_points(points, self.shard)

    def append(self, row: dict, network: str) -> dict:
        """Stamp ``row`` with ``network`` and append it to :attr:`out`; returns the row."""
        if not self._cleaned:
            from .files import remove_stale_temps
            names = {p.name for p in self.files()} | {self.out.name}
            remove_stale_temps(self.out.parent, names)
            self._cleaned = True
        row = dict(row, **{NETWORK_FIELD: network})
        append_row(self.out, row)
        return row

    def move_aside(self) -> Path | None:
        """Move every file of the grid to ``replaced/<UTC time>/`` beside it (a restart).

        Nothing is deleted. Returns the folder, or None when there was no file. Run a
        restart alone: a writer appending at the same moment would start a new file.
        """
        files = self.files()
        if not files:
            return None
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        dest, n = self.path.parent / "replaced" / stamp, 1
        while dest.exists():
            n += 1
            dest = self.path.parent / "replaced" / f"{stamp}-{n}"
        dest.mkdir(parents=True)
        for f in files:
            os.replace(f, dest / f.name)
        return dest
