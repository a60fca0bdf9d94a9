"""A small reader of MATLAB's MAT-file format, level 5 (what SVHN's ``*_32x32.mat`` are).

Numeric arrays only — enough for SVHN, no scipy needed. A level-5 file is::

    header      128 bytes: 116 bytes of text ("MATLAB 5.0 MAT-file ..."), 8 bytes subsystem
                offset, version 0x0100 (2 bytes), endian indicator "IM" (little-endian
                file) or "MI" (big-endian)
    elements    one after another, each a tag and its data:
                  tag   type (uint32), nbytes (uint32), then nbytes of data, padded to a
                        multiple of 8 bytes;
                        or the *small* form: nbytes (uint16) and type (uint16) packed in the
                        first 4 bytes, 1-4 data bytes in the next 4 (8 bytes in all)
                  type 15 (miCOMPRESSED): the data are a zlib stream holding one element
                        (MATLAB's default since v7; SVHN's files are compressed); no padding
                  type 14 (miMATRIX): one variable, made of sub-elements
                        array flags (miUINT32 ×2: class in the low byte of the first,
                                     bit 0x0800 complex, 0x0200 logical)
                        dimensions  (miINT32 × ndim)
                        name        (miINT8, ASCII)
                        real part   (any numeric type; MATLAB stores values in the smallest
                                     type that holds them: SVHN's double labels as uint8)
                        [imaginary part]

Values are in column-major (Fortran) order: a MATLAB array of size (32, 32, 3, N) read here
has ``a[i, j, c, n]`` = row i, column j, channel c of image n, as MATLAB indexes it.

Anything else — cells, structs, sparse, character or object arrays, complex numbers, level 4
or HDF5-based v7.3 files — is refused with a :class:`~tinyproj.data.files.DatasetError`
naming the file, the variable and what was found.
"""
from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np  # host-side file I/O

from .files import FRESH_COPY, DatasetError

__all__ = ["read_mat", "MAT_CLASSES", "MAT_TYPES"]

MAT_TYPES = {1: "i1", 2: "u1", 3: "i2", 4: "u2", 5: "i4", 6: "u4", 7: "f4", 9: "f8",
             12: "i8", 13: "u8"}
"""Data-element type code → NumPy dtype code (without byte order)."""
_MATRIX, _COMPRESSED = 14, 15

MAT_CLASSES = {6: "f8", 7: "f4", 8: "i1", 9: "u1", 10: "i2", 11: "u2", 12: "i4", 13: "u4",
               14: "i8", 15: "u8"}
"""Array class (mxDOUBLE_CLASS = 6, ...) → NumPy dtype code of the array returned."""
_CLASS_NAMES = {1: "a cell array", 2: "a struct", 3: "an object", 4: "a character array",
                5: "a sparse array", 16: "a function handle", 17: "an opaque object"}


class _Reader:
    def __init__(self, raw: bytes, order: str, path: Path, partial: bool = False):
        # partial: raw is only the start of a decompressed element (to read a name)
        self.raw, self.order, self.path, self.pos, self.partial = raw, order, path, 0, partial

    def fail(self, what: str):
        raise DatasetError(f"{self.path}: {what}. tinyproj reads MATLAB level-5 files holding "
                           f"numeric arrays only; if the file is damaged, {FRESH_COPY}")

    def tag(self):
        """``(type, nbytes, data start, end of the element incl. padding)`` at self.pos."""
        if self.pos + 8 > len(self.raw):
            self.fail(f"ends inside a data element's tag at byte {self.pos}")
        first, second = np.frombuffer(self.raw, self.order + "u4", 2, self.pos)
        first, second = int(first), int(second)
        if first >> 16:                                  # small element: all in 8 bytes
            return first & 0xFFFF, first >> 16, self.pos + 4, self.pos + 8
        start = self.pos + 8
        end = start + second
        if end > len(self.raw) and not self.partial:
            self.fail(f"a data element at byte {self.pos} announces {second} bytes but the "
                      f"file ends {len(self.raw) - start} bytes later (truncated?)")
        if first != _COMPRESSED:
            end += -second % 8                           # padded to 8 bytes
        return first, second, start, min(end, len(self.raw))

    def numbers(self, kind, nbytes, start, what):
        if kind not in MAT_TYPES:
            self.fail(f"{what} has data type {kind}, which is not a numeric type")
        dtype = np.dtype(self.order + MAT_TYPES[kind])
        if nbytes % dtype.itemsize:
            self.fail(f"{what}: {nbytes} bytes is not a whole number of {dtype} values")
        return np.frombuffer(self.raw, dtype, nbytes // dtype.itemsize, start)


def _matrix(r: _Reader, start: int, end: int):
    """``(name, array)`` of the miMATRIX whose sub-elements lie in raw[start:end]."""
    r.pos = start
    kind, nbytes, s, r.pos = r.tag()
    flags = r.numbers(kind, nbytes, s, "the array flags")
    if kind != 6 or len(flags) != 2:
        r.fail("a variable does not start with its array flags (2 × uint32)")
    cls, complex_ = int(flags[0]) & 0xFF, bool(int(flags[0]) & 0x0800)
    kind, nbytes, s, r.pos = r.tag()
    dims = tuple(int(d) for d in r.numbers(kind, nbytes, s, "the dimensions"))
    kind, nbytes, s, r.pos = r.tag()
    name = r.raw[s:s + nbytes].decode("ascii", "replace")
    if cls not in MAT_CLASSES:
        r.fail(f"variable {name!r} is {_CLASS_NAMES.get(cls, f'of array class {cls}')}, not a "
               "numeric array")
    if complex_:
        r.fail(f"variable {name!r} is complex")
    kind, nbytes, s, r.pos = r.tag()
    values = r.numbers(kind, nbytes, s, f"variable {name!r}")
    count = int(np.prod(dims)) if dims else 0
    if values.size != count:
        r.fail(f"variable {name!r} has dimensions {dims} ({count} values) but holds "
               f"{values.size} values")
    out = values.astype(np.dtype(MAT_CLASSES[cls]), copy=False).reshape(dims, order="F")
    return name, out


def read_mat(path, names=None) -> dict:
    """``{name: array}`` of the numeric variables of a MAT-file (level 5), in MATLAB's shape.

    names: read only these variables (the others are skipped: only the first bytes of a
    compressed one are decompressed, to read its name);
    a name asked for and not in the file is a DatasetError. Arrays have the dtype of their
    MATLAB class (double → float64, uint8 → uint8, ...), whatever type they were stored in.
    """
    path = Path(path)
    raw = path.read_bytes()
    if len(raw) < 128:
        raise DatasetError(f"{path} is {len(raw)} bytes long, too short for a MAT-file header")
    if raw[:4] == b"\x89HDF" or raw[512:516] == b"\x89HDF":
        raise DatasetError(f"{path} is a MATLAB v7.3 (HDF5) file; tinyproj reads level-5 "
                           "MAT-files only (save with -v7, or use h5py)")
    marker = raw[126:128]
    if marker not in (b"IM", b"MI") or not raw[:6] == b"MATLAB":
        raise DatasetError(f"{path} is not a level-5 MAT-file (no 'MATLAB' header with an "
                           "IM/MI endian indicator); level-4 files are not supported")
    order = "<" if marker == b"IM" else ">"
    top = _Reader(raw, order, path)
    wanted = None if names is None else set(names)
    found, seen = {}, []
    pos = 128
    while pos < len(raw) and (wanted is None or wanted - set(found)):
        top.pos = pos
        kind, nbytes, start, pos = top.tag()
        if kind == _COMPRESSED:
            packed = memoryview(raw)[start:start + nbytes]     # no copy of 180 MB
            head = _inflate(top, packed, start, 256)      # enough for the variable's name
            name = _name(_Reader(head, order, path, partial=True))
            seen.append(name)
            if wanted is not None and name not in wanted:
                continue
            r = _Reader(_inflate(top, packed, start), order, path)
            kind, nbytes, s, _ = r.tag()
        else:
            r, s = top, start
        if kind != _MATRIX:
            continue                                      # e.g. a subsystem element
        if r is top:
            seen.append(_name(r, s - 8))
            if wanted is not None and seen[-1] not in wanted:
                continue
        name, array = _matrix(r, s, s + nbytes)
        found[name] = array
    if wanted is not None and wanted - set(found):
        missing = ", ".join(sorted(wanted - set(found)))
        held = ", ".join(repr(n) for n in seen if n is not None) or "no variable"
        raise DatasetError(f"{path} has no variable named {missing}; it holds {held}")
    return found


def _inflate(r: _Reader, packed: bytes, start: int, max_length: int = 0) -> bytes:
    """The zlib stream of a compressed element (its first ``max_length`` bytes when > 0)."""
    try:
        return zlib.decompressobj().decompress(packed, max_length)
    except zlib.error as err:
        r.fail(f"the compressed element at byte {start - 8} cannot be decompressed ({err})")


def _name(r: _Reader, at: int = 0):
    """The name of the miMATRIX whose tag is at ``at`` (None when it is not a matrix)."""
    r.pos = at
    kind, _, start, _ = r.tag()
    if kind != _MATRIX:
        return None
    r.pos = start
    for _ in range(2):                                    # array flags, dimensions
        r.pos = r.tag()[3]
    _, nbytes, s, _ = r.tag()
    return r.raw[s:s + nbytes].decode("ascii", "replace")
