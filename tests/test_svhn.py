"""SVHN from its .mat files (through tinyproj's own MAT-file reader) and the Walking Noise
normalizations (issue 13). Every file is written by the test itself (tests/matv5_writer.py);
the real SVHN, when present in the shared data folder, is checked too and skipped otherwise."""
import struct
import zlib

import numpy as np
import pytest

from tinyproj import data
from tinyproj.data import preprocess, svhn
from tinyproj.data.files import DatasetError, DatasetNotFoundError
from tinyproj.data.matfile import read_mat
from tinyproj.errors import UserError
from tinyproj.runs.config import make_config

from matv5_writer import complex_element, struct_like_element, write_mat


def _svhn_arrays(n, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 256, (32, 32, 3, n), dtype=np.uint8)
    y = (np.arange(n) % 10 + 1).astype(np.float64).reshape(n, 1)      # 1..10, 10 = digit 0
    return X, y


# --- the MAT-file reader ----------------------------------------------------------------------
@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("big_endian", [False, True])
def test_read_mat_round_trip(tmp_path, compress, big_endian):
    X, y = _svhn_arrays(5)
    other = np.arange(6, dtype=np.int16).reshape(2, 3)
    path = tmp_path / "a.mat"
    write_mat(path, {"X": X, "y": y, "other": other}, compress=compress,
              big_endian=big_endian, stored={"y": np.uint8})      # doubles stored as uint8
    got = read_mat(path)
    assert set(got) == {"X", "y", "other"}
    np.testing.assert_array_equal(got["X"], X)
    assert got["y"].dtype == np.float64 and got["y"].shape == (5, 1)   # the class, not storage
    np.testing.assert_array_equal(got["y"], y)
    np.testing.assert_array_equal(got["other"], other)     # column-major order respected
    assert got["other"][1, 0] == 3
    assert list(read_mat(path, names=["y"])) == ["y"]


def test_read_mat_names_what_is_missing(tmp_path):
    path = tmp_path / "a.mat"
    write_mat(path, {"X": np.zeros((2, 2), np.uint8)}, compress=True)
    with pytest.raises(DatasetError, match="no variable named y; it holds 'X'"):
        read_mat(path, names=["y"])


@pytest.mark.parametrize("cls, what", [(1, "a cell array"), (2, "a struct"),
                                       (4, "a character array"), (5, "a sparse array")])
def test_read_mat_refuses_what_is_not_numeric(tmp_path, cls, what):
    path = tmp_path / "a.mat"
    write_mat(path, {"X": np.zeros((2, 2), np.uint8)},
              raw_elements=[struct_like_element("bad", cls)])
    with pytest.raises(DatasetError, match=f"'bad' is {what}, not a numeric array"):
        read_mat(path)
    assert list(read_mat(path, names=["X"])) == ["X"]       # skipped when not asked for


def test_read_mat_refuses_complex_hdf5_garbage_truncation(tmp_path):
    path = tmp_path / "a.mat"
    write_mat(path, {"X": np.zeros((2, 2))}, raw_elements=[complex_element("z")])
    with pytest.raises(DatasetError, match="'z' is complex"):
        read_mat(path)
    path.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 600)
    with pytest.raises(DatasetError, match="v7.3 \\(HDF5\\)"):
        read_mat(path)
    path.write_bytes(b"not a mat file at all" * 10)
    with pytest.raises(DatasetError, match="not a level-5 MAT-file"):
        read_mat(path)
    write_mat(path, {"X": np.arange(100, dtype=np.uint8).reshape(10, 10)})
    path.write_bytes(path.read_bytes()[:-40])
    with pytest.raises(DatasetError, match="truncated"):
        read_mat(path)
    write_mat(path, {"X": np.zeros((2, 2))}, compress=True)
    raw = bytearray(path.read_bytes())
    raw[140:150] = b"\xff" * 10                              # inside the zlib stream
    path.write_bytes(bytes(raw))
    with pytest.raises(DatasetError, match="cannot be decompressed"):
        read_mat(path)


def test_read_mat_of_a_hand_made_file():
    """A file laid out by hand from the format description (small element for the name):
    independent of the writer above."""
    order = "<"
    header = b"MATLAB 5.0 MAT-file".ljust(116) + b"\0" * 8 + struct.pack("<H", 0x0100) + b"IM"
    body = (struct.pack(order + "IIII", 6, 8, 9, 0)               # flags: uint8 class
            + struct.pack(order + "IIii", 5, 8, 2, 3)               # dims 2 × 3
            + struct.pack(order + "I", (1 << 16) | 1) + b"a\0\0\0"  # name "a", small format
            + struct.pack(order + "II", 2, 6) + bytes([1, 2, 3, 4, 5, 6]) + b"\0\0")
    element = struct.pack(order + "II", 14, len(body)) + body
    import tempfile
    from pathlib import Path
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "h.mat"
        p.write_bytes(header + element)
        np.testing.assert_array_equal(read_mat(p)["a"], [[1, 3, 5], [2, 4, 6]])
        packed = zlib.compress(element)
        p.write_bytes(header + struct.pack("<II", 15, len(packed)) + packed)
        np.testing.assert_array_equal(read_mat(p)["a"], [[1, 3, 5], [2, 4, 6]])


# --- SVHN ---------------------------------------------------------------------------------------
def test_read_svhn_mat_transposes_and_maps_10_to_0(tmp_path):
    X, y = _svhn_arrays(12)
    X[4, 7, 2, 5] = 201                     # row 4, column 7, blue, image 5
    path = tmp_path / "train_32x32.mat"
    write_mat(path, {"X": X, "y": y}, compress=True, stored={"y": np.uint8})
    x, labels = data.read_svhn_mat(path)
    assert x.shape == (12, 3, 32, 32) and x.dtype == np.uint8 and x.flags.c_contiguous
    assert x[5, 2, 4, 7] == 201
    np.testing.assert_array_equal(x[3], X[:, :, :, 3].transpose(2, 0, 1))
    assert labels.dtype == np.int64
    np.testing.assert_array_equal(labels, (np.arange(12) % 10 + 1) % 10)
    assert labels[9] == 0 and labels[0] == 1


@pytest.mark.parametrize("variables, message", [
    ({"X": np.zeros((28, 28, 1, 2), np.uint8), "y": np.ones((2, 1))}, "expected uint8"),
    ({"X": np.zeros((32, 32, 3, 2)), "y": np.ones((2, 1))}, "expected uint8"),
    ({"X": np.zeros((32, 32, 3, 2), np.uint8), "y": np.array([[0.0], [3.0]])}, "in 1..10"),
    ({"X": np.zeros((32, 32, 3, 2), np.uint8), "y": np.ones((3, 1))}, "expected 2 whole"),
])
def test_read_svhn_mat_refuses_wrong_contents(tmp_path, variables, message):
    path = tmp_path / "x.mat"
    write_mat(path, variables)
    with pytest.raises(DatasetError, match=message):
        data.read_svhn_mat(path)


def _svhn_folder(root, n_train=20, n_test=10):
    folder = root / "svhn"
    folder.mkdir(parents=True)
    for name, n, seed in (("train_32x32.mat", n_train, 0), ("test_32x32.mat", n_test, 1)):
        X, y = _svhn_arrays(n, seed)
        write_mat(folder / name, {"X": X, "y": y}, compress=True, stored={"y": np.uint8})
    return folder


def test_load_dataset_svhn_with_the_authors_normalization(tmp_path, monkeypatch):
    monkeypatch.setattr(svhn, "SVHN_SIZES", {"train_32x32.mat": 20, "test_32x32.mat": 10})
    folder = _svhn_folder(tmp_path / "data")
    before = sorted(p.name for p in folder.iterdir())
    with pytest.warns(data.ChecksumWarning):                      # not the official files
        ds = data.load_dataset("SVHN", data_dir=tmp_path / "data", download=False,
                               cache_dir=tmp_path / "cache")
    assert ds.name == "svhn" and ds.preprocess == "meanstd" and ds.input_shape == (3, 32, 32)
    assert ds.x_train.shape == (20, 3, 32, 32) and ds.x_test.shape == (10, 3, 32, 32)
    raw, _ = data.read_svhn_mat(folder / "train_32x32.mat")
    c = 1
    expect = (raw[:, c] / 255 - preprocess.AUTHORS_MEAN[c]) / preprocess.AUTHORS_STD[c]
    np.testing.assert_allclose(ds.x_train[:, c], expect, rtol=1e-5, atol=1e-5)
    assert ds.pad_value == pytest.approx([-m / s for m, s in
                                          zip(preprocess.AUTHORS_MEAN, preprocess.AUTHORS_STD)])
    assert sorted(p.name for p in folder.iterdir()) == before     # nothing written there


def test_svhn_missing_without_download_says_where(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="train_32x32.mat, test_32x32.mat not found"):
        data.load_svhn(tmp_path, download=False)


def test_svhn_download_asks_for_each_file_with_its_md5(tmp_path, monkeypatch):
    calls = []

    def fake_retrieve(url, known_hash=None, fname=None, path=None, progressbar=False, **kw):
        calls.append((url, known_hash))
        X, y = _svhn_arrays(3)
        write_mat(f"{path}/{fname}", {"X": X, "y": y}, compress=True)
        return f"{path}/{fname}"

    import pooch
    monkeypatch.setattr(pooch, "retrieve", fake_retrieve)
    monkeypatch.setattr(svhn, "SVHN_SIZES", {"train_32x32.mat": 3, "test_32x32.mat": 3})
    with pytest.warns(data.ChecksumWarning):
        x_train, y_train, x_test, y_test = data.load_svhn(tmp_path, download=True)
    assert calls == [(svhn.SVHN_URL + "train_32x32.mat", "md5:e26dedcc434d2e4c54c9b2d4a06d8373"),
                     (svhn.SVHN_URL + "test_32x32.mat", "md5:eb5a983be6a315427106f1b164d9cef3")]
    assert x_train.shape == (3, 3, 32, 32) and y_test.shape == (3,)


def test_real_svhn_when_present(shared_data_dir, monkeypatch):
    if not (shared_data_dir / "svhn" / "test_32x32.mat").is_file():
        pytest.skip("SVHN is not in the shared data folder")
    x, y = data.read_svhn_mat(shared_data_dir / "svhn" / "test_32x32.mat", 26032)
    assert x.shape == (26032, 3, 32, 32) and set(np.unique(y)) == set(range(10))


# --- normalizations -----------------------------------------------------------------------------
def test_signed_and_meanstd_normalizations():
    pixels = np.array([0, 51, 255], dtype=np.uint8).reshape(1, 1, 1, 3)
    np.testing.assert_allclose(preprocess.scale_signed(pixels).ravel(), [-1, -0.6, 1], atol=1e-6)
    img = np.zeros((2, 3, 2, 2), np.uint8)
    img[:, 1] = 255
    out = preprocess.normalize_channels(img)
    assert out.dtype == np.float32
    assert out[0, 0, 0, 0] == pytest.approx(-0.4914 / 0.2023, rel=1e-6)
    assert out[1, 1, 1, 1] == pytest.approx((1 - 0.4822) / 0.1994, rel=1e-6)
    assert preprocess.black_value("meanstd", 3)[2] == pytest.approx(-0.4465 / 0.2010)
    assert preprocess.black_value("signed", 1) == (-1.0,)
    assert preprocess.black_value("scale", 1) == (0.0,)
    with pytest.raises(ValueError, match="shape \\(N, 3, H, W\\)"):
        preprocess.normalize_channels(np.zeros((2, 1, 4, 4), np.uint8))


def test_preprocess_choices_are_checked_before_loading():
    cfg = make_config(model="mlp_tfc", dataset="svhn", preprocess="meanstd")
    assert cfg.dataset == "svhn"
    assert make_config(model="lenet5", dataset="fashion-mnist", preprocess="signed")
    with pytest.raises(UserError, match="three RGB channel") as err:
        make_config(model="mlp_tfc", dataset="mnist", preprocess="meanstd")
    assert err.value.flag == "--preprocess"
    with pytest.raises(UserError, match="floats already") as err:
        make_config(model="mlp_tfc", dataset="synthetic", preprocess="signed")
    assert err.value.flag == "--preprocess"
