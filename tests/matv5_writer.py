"""A minimal MAT-file level-5 writer for the tests (numeric arrays, optionally compressed).

Written from the format's description (MathWorks, "MAT-File Format", level 5), separately
from the reader in tinyproj/data/matfile.py: a 128-byte header, then one miMATRIX element
per variable — array flags, dimensions, name, real part — each sub-element padded to 8
bytes; with ``compress=True`` each miMATRIX is wrapped in a zlib miCOMPRESSED element, as
MATLAB saves by default. Values are written in column-major order.
"""
import struct
import zlib

import numpy as np

_TYPE = {np.dtype("int8"): 1, np.dtype("uint8"): 2, np.dtype("int16"): 3,
         np.dtype("uint16"): 4, np.dtype("int32"): 5, np.dtype("uint32"): 6,
         np.dtype("float32"): 7, np.dtype("float64"): 9}
_CLASS = {np.dtype("float64"): 6, np.dtype("float32"): 7, np.dtype("int8"): 8,
          np.dtype("uint8"): 9, np.dtype("int16"): 10, np.dtype("uint16"): 11,
          np.dtype("int32"): 12, np.dtype("uint32"): 13}


def _element(kind: int, data: bytes, order: str, small_ok: bool = True) -> bytes:
    if small_ok and 0 < len(data) <= 4:   # small format: nbytes in the upper 16 bits, 8 bytes
        return struct.pack(order + "I", (len(data) << 16) | kind) + data.ljust(4, b"\0")
    pad = -len(data) % 8
    return struct.pack(order + "II", kind, len(data)) + data + b"\0" * pad


def _matrix(name: str, array, order: str, stored=None, class_code=None, flags_extra=0) -> bytes:
    a = np.asarray(array)
    stored = np.dtype(stored or a.dtype)
    values = np.asarray(a, dtype=stored.newbyteorder(order)).ravel(order="F").tobytes()
    cls = class_code if class_code is not None else _CLASS[a.dtype]
    body = (_element(6, struct.pack(order + "II", cls | flags_extra, 0), order)
            + _element(5, struct.pack(order + f"{a.ndim}i", *a.shape), order)
            + _element(1, name.encode("ascii"), order)
            + _element(_TYPE[stored], values, order))
    return struct.pack(order + "II", 14, len(body)) + body


def write_mat(path, variables: dict, compress=False, big_endian=False, stored=None,
              raw_elements=()):
    """Write ``variables`` ({name: numeric array (≥ 2-D, as MATLAB)}) to a level-5 MAT-file.

    stored: {name: dtype} to store a variable's values in a smaller type than its class
    (MATLAB stores double labels 1..10 as uint8). raw_elements: extra already-made top-level
    elements (bytes) appended after the variables (for the refusal tests).
    """
    order = ">" if big_endian else "<"
    text = b"MATLAB 5.0 MAT-file, written by tinyproj's tests".ljust(116, b" ")
    header = text + b"\0" * 8 + struct.pack(order + "H", 0x0100) + (b"MI" if big_endian
                                                                      else b"IM")
    out = [header]
    for name, array in variables.items():
        element = _matrix(name, array, order, (stored or {}).get(name))
        if compress:
            packed = zlib.compress(element)
            element = struct.pack(order + "II", 15, len(packed)) + packed
        out.append(element)
    out.extend(raw_elements)
    with open(path, "wb") as f:
        f.write(b"".join(out))


def struct_like_element(name: str, class_code: int, order="<") -> bytes:
    """A top-level miMATRIX of a non-numeric class (cell 1, struct 2, char 4, sparse 5)."""
    return _matrix(name, np.zeros((1, 1), np.uint8), order, class_code=class_code)


def complex_element(name: str, order="<") -> bytes:
    """A numeric miMATRIX flagged complex (bit 0x0800)."""
    return _matrix(name, np.zeros((1, 1)), order, flags_extra=0x0800)
