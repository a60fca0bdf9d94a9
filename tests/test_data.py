"""Tests of tinyproj.data: loaders, file checks, preprocessing, cache, splits, minibatches."""
import gzip
import io
import os
import pickle
import stat
import struct
import tarfile
import warnings
from pathlib import Path

import numpy as np
import pytest

from tinyproj import backend, data
from tinyproj.data import cifar, dataset, files, location, mnist
from tinyproj.data.files import ChecksumWarning, DatasetError, DatasetNotFoundError
from tinyproj.errors import UserError


def _no_download(*args, **kwargs):
    raise AssertionError("pooch.retrieve was called although the files are present")


def _write_batch(path, data_array, labels):
    with open(path, "wb") as f:
        pickle.dump({"batch_label": "made up", "data": data_array, "labels": list(labels),
                     "filenames": []}, f, protocol=2)


def _write_idx(path, array, magic):
    header = struct.pack(">I", magic) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


# ---------------------------------------------------------------------------
# CIFAR-10 file checks
# ---------------------------------------------------------------------------
def test_cifar_valid_batch_reads(tmp_path):
    rng = np.random.default_rng(0)
    _write_batch(tmp_path / "data_batch_1", rng.integers(0, 256, (10000, 3072), dtype=np.uint8),
                 rng.integers(0, 10, 10000))
    x, y = data.read_cifar_batch(tmp_path / "data_batch_1")
    assert x.shape == (10000, 3072) and x.dtype == np.uint8
    assert y.shape == (10000,) and y.dtype == np.int64


def test_cifar_truncated_batch_names_file_and_fix(tmp_path):
    path = tmp_path / "data_batch_1"
    _write_batch(path, np.zeros((10000, 3072), np.uint8), np.zeros(10000, int))
    path.write_bytes(path.read_bytes()[:5000])  # cut short, as by an interrupted copy
    with pytest.raises(DatasetError, match="data_batch_1") as info:
        data.read_cifar_batch(path)
    assert "truncated or corrupt" in str(info.value) and "download=True" in str(info.value)


def test_cifar_garbled_batch(tmp_path):
    path = tmp_path / "test_batch"
    path.write_bytes(np.random.default_rng(1).integers(0, 256, 4000, dtype=np.uint8).tobytes())
    with pytest.raises(DatasetError, match="test_batch.*truncated or corrupt"):
        data.read_cifar_batch(path)


@pytest.mark.parametrize("content, message", [
    ({"data": np.zeros((10, 3072), np.uint8), "labels": [0] * 10}, r"shape \(10, 3072\)"),
    ({"data": np.zeros((10000, 3072), np.float32), "labels": [0] * 10000}, "dtype float32"),
    ({"data": np.zeros((10000, 3072), np.uint8), "labels": [12] * 10000}, "expected 0..9"),
    ({"pixels": np.zeros((10000, 3072), np.uint8)}, "expected at least 'data' and 'labels'"),
    ([1, 2, 3], "holds a list"),
])
def test_cifar_wrong_structure(tmp_path, content, message):
    path = tmp_path / "data_batch_3"
    path.write_bytes(pickle.dumps(content, protocol=2))
    with pytest.raises(DatasetError, match=message):
        data.read_cifar_batch(path)


def test_cifar_pickle_cannot_run_code(tmp_path):
    import os
    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps(os.getcwd, protocol=2))  # a pickle that names a function
    with pytest.raises(DatasetError, match="refusing"):
        data.read_cifar_batch(path)


def test_cifar_missing_without_download(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="data_batch_1.*TINYPROJ_DATA"):
        data.load_cifar10(tmp_path, download=False)


def test_cifar_download_extracts_into_place(tmp_path, monkeypatch):
    archive = tmp_path / "made-up.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name, payload in [("cifar-10-batches-py/batches.meta", b"meta"),
                              ("cifar-10-batches-py/data_batch_1", b"batch"),
                              ("elsewhere/readme", b"not ours")]:
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    calls = []

    def fake_retrieve(url, known_hash=None, fname=None, path=None, progressbar=False, **kw):
        calls.append((url, known_hash, progressbar))
        return str(archive)

    import pooch
    monkeypatch.setattr(pooch, "retrieve", fake_retrieve)
    folder = data.download_cifar10(tmp_path / "d")
    assert calls == [(cifar.CIFAR10_URL, "md5:" + cifar.CIFAR10_ARCHIVE_MD5, True)]
    assert (folder / "data_batch_1").read_bytes() == b"batch"
    assert sorted(p.name for p in folder.iterdir()) == ["batches.meta", "data_batch_1"]
    assert not (tmp_path / "d" / "elsewhere").exists()


def test_download_failure_says_what_to_do(tmp_path, monkeypatch):
    import pooch

    def offline(*args, **kwargs):
        raise ConnectionError("no network")

    monkeypatch.setattr(pooch, "retrieve", offline)
    with pytest.raises(DatasetNotFoundError, match="no internet access.*TINYPROJ_DATA"):
        data.load_cifar10(tmp_path, download=True)


def test_failed_download_leaves_no_folders_it_made(tmp_path, monkeypatch):
    # a mistyped --data-dir must not leave a tree of empty folders behind; folders that were
    # there before, or that hold anything, stay
    import pooch

    def offline(*args, **kwargs):
        raise ConnectionError("no network")

    monkeypatch.setattr(pooch, "retrieve", offline)
    (tmp_path / "kept").mkdir()
    with pytest.raises(DatasetNotFoundError):
        data.load_cifar10(tmp_path / "kept" / "typo" / "deeper", download=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept"]
    assert list((tmp_path / "kept").iterdir()) == []
    with pytest.raises(DatasetNotFoundError):
        files.download("https://example.invalid/x", "0" * 32, tmp_path / "new", "x.bin")
    assert not (tmp_path / "new").exists()


def test_atomic_writes_use_one_temporary_name_pattern(tmp_path, monkeypatch):
    # both atomic writers name their temporary file .NAME.XXXXXX.tmp, the pattern that
    # runs.files.remove_stale_temps clears after a kill
    from tinyproj.runs.files import remove_stale_temps
    seen = []
    real_replace = os.replace

    def spy(src, dst):
        seen.append(Path(src).name)
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    files.atomic_save_npz(tmp_path / "cache.npz", a=np.arange(3))
    files.atomic_write_bytes(tmp_path / "mark.json", b"{}")
    assert len(seen) == 2
    assert seen[0].startswith(".cache.npz.") and seen[0].endswith(".tmp")
    assert seen[1].startswith(".mark.json.") and seen[1].endswith(".tmp")
    (tmp_path / seen[0]).write_bytes(b"half")             # as a kill would leave it
    assert [p.name for p in remove_stale_temps(tmp_path, ["cache.npz"])] == [seen[0]]


def test_real_cifar_structure_md5_warning_no_download(shared_data_dir, monkeypatch):
    import pooch
    monkeypatch.setattr(pooch, "retrieve", _no_download)
    with pytest.warns(ChecksumWarning, match="data_batch_1.*differs from the official"):
        x_train, y_train, x_test, y_test = data.load_cifar10(shared_data_dir, download=True)
    assert x_train.shape == (50000, 3, 32, 32) and x_train.dtype == np.uint8
    assert x_test.shape == (10000, 3, 32, 32) and x_test.dtype == np.uint8
    assert y_train.dtype == np.int64 and y_test.dtype == np.int64
    assert np.bincount(y_train).tolist() == [5000] * 10
    assert np.bincount(y_test).tolist() == [1000] * 10
    assert y_train[:3].tolist() == [6, 9, 9] and y_test[:3].tolist() == [3, 8, 8]
    # batches.meta is byte-exact, so it is not in the warning
    assert files.file_md5(shared_data_dir / "cifar-10-batches-py" / "batches.meta") \
        == cifar.CIFAR10_FILE_MD5["batches.meta"]


def test_md5_computed_once_per_file_version(tmp_path, monkeypatch):
    import hashlib
    calls = []
    real_md5 = hashlib.md5

    def counting_md5(*args, **kwargs):
        calls.append(1)
        return real_md5(*args, **kwargs)

    monkeypatch.setattr(files.hashlib, "md5", counting_md5)
    path = tmp_path / "f.bin"
    path.write_bytes(b"abc")
    assert files.file_md5(path) == real_md5(b"abc").hexdigest()
    assert files.file_md5(path) == real_md5(b"abc").hexdigest()
    assert len(calls) == 1  # the verdict is remembered
    path.write_bytes(b"abcd")  # a changed file (size) is hashed again
    assert files.file_md5(path) == real_md5(b"abcd").hexdigest() and len(calls) == 2
    with pytest.warns(ChecksumWarning, match="f.bin"):
        assert files.warn_on_md5_mismatch(tmp_path, {"f.bin": "0" * 32, "absent": "1"}, "X") \
            == ["f.bin"]


# ---------------------------------------------------------------------------
# MNIST and IDX files
# ---------------------------------------------------------------------------
def test_real_mnist(shared_data_dir, monkeypatch):
    import pooch
    monkeypatch.setattr(pooch, "retrieve", _no_download)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ChecksumWarning)  # this copy is byte-exact
        x_train, y_train, x_test, y_test = data.load_mnist(shared_data_dir)
    assert x_train.shape == (60000, 1, 28, 28) and x_train.dtype == np.uint8
    assert x_test.shape == (10000, 1, 28, 28)
    assert y_train.dtype == np.int64 and len(y_train) == 60000 and len(y_test) == 10000
    assert y_train[0] == 5 and y_test[0] == 7
    assert set(np.unique(y_train)) == set(range(10))


def test_mnist_downloaded_from_mirror_when_missing(tmp_path, shared_data_dir, monkeypatch):
    import shutil
    import pooch
    calls = []

    def fake_retrieve(url, known_hash=None, fname=None, path=None, progressbar=False, **kw):
        calls.append((url, known_hash))
        shutil.copy(shared_data_dir / "mnist" / fname, path / fname)
        return str(path / fname)

    monkeypatch.setattr(pooch, "retrieve", fake_retrieve)
    x_train, y_train, _, _ = data.load_mnist(tmp_path)
    assert len(calls) == 4 and y_train[0] == 5
    assert all(url.startswith(mnist.MNIST_MIRRORS[0]) for url, _ in calls)
    assert sorted(h for _, h in calls) == sorted("md5:" + m for m in mnist.MNIST_MD5.values())


def test_idx_checks(tmp_path):
    images = np.arange(2 * 28 * 28).reshape(2, 28, 28) % 256
    good = tmp_path / "good.gz"
    _write_idx(good, images, 2051)
    np.testing.assert_array_equal(data.read_idx(good, 2051), images)

    with pytest.raises(DatasetError, match="magic number 2051.*expected 2049"):
        data.read_idx(good, 2049)

    truncated = tmp_path / "truncated.gz"
    truncated.write_bytes(good.read_bytes()[:60])
    with pytest.raises(DatasetError, match="truncated.gz.*(truncated|decompressed)"):
        data.read_idx(truncated, 2051)

    short = tmp_path / "short.gz"
    with gzip.open(short, "wb") as f:
        f.write(gzip.decompress(good.read_bytes())[:-10])  # valid gzip, 10 values missing
    with pytest.raises(DatasetError, match=r"announces shape \(2, 28, 28\)"):
        data.read_idx(short, 2051)

    not_gzip = tmp_path / "plain.gz"
    not_gzip.write_bytes(b"hello, I am not compressed")
    with pytest.raises(DatasetError, match="not a gzip file"):
        data.read_idx(not_gzip)


def test_mnist_wrong_count_and_missing(tmp_path):
    folder = tmp_path / "mnist"
    folder.mkdir()
    with pytest.raises(DatasetNotFoundError, match="train-images-idx3-ubyte.gz"):
        data.load_mnist(tmp_path, download=False)
    for name in mnist.MNIST_MD5:
        is_images = "images" in name
        count = 60000 if name.startswith("train") else 10000
        count = 100 if is_images and name.startswith("train") else count
        array = np.zeros((count, 28, 28) if is_images else (count,), np.uint8)
        _write_idx(folder / name, array, 2051 if is_images else 2049)
    with pytest.raises(DatasetError, match=r"shape \(100, 28, 28\), expected \(60000, 28, 28\)"):
        data.load_mnist(tmp_path, download=False)


# ---------------------------------------------------------------------------
# Preprocessing
# ---------------------------------------------------------------------------
def test_gcn_mean_zero_norm_scale():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (20, 3, 4, 4)).astype(np.uint8)
    before = x.copy()
    out = data.global_contrast_normalize(x, scale=55.0)
    assert out.shape == x.shape and out.dtype == np.float64
    rows = out.reshape(20, -1)
    np.testing.assert_allclose(rows.mean(axis=1), 0, atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(rows, axis=1), 55.0, rtol=1e-12)
    np.testing.assert_array_equal(x, before)  # input untouched


def test_gcn_use_std_matches_pylearn2_formula():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((5, 30)) * 3 + 2
    out = data.global_contrast_normalize(x, scale=2.0, use_std=True, sqrt_bias=0.5)
    centered = x - x.mean(axis=1, keepdims=True)
    expected = centered / (np.sqrt(0.5 + centered.var(axis=1, ddof=1)) / 2.0)[:, None]
    np.testing.assert_allclose(out, expected, rtol=1e-12)
    blank = data.global_contrast_normalize(np.full((2, 8), 7.0), scale=55.0)
    np.testing.assert_array_equal(blank, 0.0)  # min_divisor: no NaN for a flat image


def test_zca_matches_closed_form():
    rng = np.random.default_rng(2)
    n, d, bias = 400, 12, 0.1
    x = rng.standard_normal((n, d)) @ rng.standard_normal((d, d))  # correlated features
    zca = data.ZCA(filter_bias=bias).fit(x)
    white = zca.transform(x, dtype=np.float64)
    centered = x - x.mean(axis=0)
    cov = centered.T @ centered / n
    e, v = np.linalg.eigh(cov)
    np.testing.assert_allclose(zca.W_, (v / np.sqrt(e + bias)) @ v.T, atol=1e-10)
    np.testing.assert_allclose(zca.W_, zca.W_.T, atol=1e-12)
    # whitened covariance = V diag(e / (e + bias)) V^T: nearly I where e >> bias
    np.testing.assert_allclose(white.T @ white / n, (v * (e / (e + bias))) @ v.T, atol=1e-10)
    no_bias = data.ZCA(filter_bias=0.0).fit(x).transform(x, dtype=np.float64)
    np.testing.assert_allclose(no_bias.T @ no_bias / n, np.eye(d), atol=1e-8)
    images = rng.standard_normal((7, 3, 2, 2))
    assert data.ZCA().fit(images).transform(images).shape == (7, 3, 2, 2)
    assert data.ZCA().fit(images).transform(images).dtype == np.float32


def test_zca_errors():
    with pytest.raises(RuntimeError, match="before fit"):
        data.ZCA().transform(np.zeros((2, 3)))
    zca = data.ZCA().fit(np.random.default_rng(0).standard_normal((10, 4)))
    with pytest.raises(ValueError, match="fitted on 4 values"):
        zca.transform(np.zeros((2, 5)))


@pytest.mark.numpy_only("loading and whitening run on host arrays whatever the backend")
def test_cifar_gcn_zca_subset_and_cache_hit(shared_data_dir, tmp_path, monkeypatch):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ChecksumWarning)
        ds = data.load_dataset("cifar10", data_dir=shared_data_dir, train_subset=500,
                               cache_dir=tmp_path)
    assert ds.x_train.shape == (500, 3, 32, 32) and ds.x_train.dtype == np.float32
    assert ds.x_test.shape == (10000, 3, 32, 32) and ds.x_test.dtype == np.float32
    assert ds.y_train.shape == (500,) and ds.num_classes == 10 and ds.preprocess == "gcn_zca"
    assert ds.class_names[0] == "airplane"
    assert np.isfinite(ds.x_train).all()
    np.testing.assert_allclose(ds.x_train.reshape(500, -1).mean(axis=0), 0, atol=1e-3)
    cached = list(tmp_path.glob("cifar10-gcn_zca-*train_subset500*.npz"))
    assert len(cached) == 1

    def must_not_run(*args, **kwargs):
        raise AssertionError("the cache should have been used")

    monkeypatch.setattr(dataset, "gcn_zca", must_not_run)
    monkeypatch.setattr(cifar, "read_cifar_batch", must_not_run)
    again = data.load_dataset("cifar10", data_dir=shared_data_dir, train_subset=500,
                              cache_dir=tmp_path)
    for name in ("x_train", "y_train", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(again, name), getattr(ds, name))


def test_cache_key_and_unreadable_cache(tmp_path):
    opts = dict(preprocess="gcn_zca", cache=True, cache_dir=tmp_path, n_train=300, n_test=50,
                shape=(3, 4, 4))
    first = data.load_dataset("synthetic", **opts)
    assert len(list(tmp_path.glob("*.npz"))) == 1
    data.load_dataset("synthetic", zca_filter_bias=0.2, **opts)
    data.load_dataset("synthetic", train_subset=100, **opts)
    assert len(list(tmp_path.glob("*.npz"))) == 3
    assert not list(tmp_path.glob("*.tmp"))  # atomic writes leave no temporary files
    path = sorted(tmp_path.glob("*.npz"), key=lambda p: p.stat().st_mtime_ns)[0]
    path.write_bytes(b"garbage")
    with pytest.warns(UserWarning, match="unreadable cache"):
        again = data.load_dataset("synthetic", **opts)
    np.testing.assert_array_equal(again.x_train, first.x_train)


def test_scale_to_unit():
    out = data.scale_to_unit(np.array([0, 51, 255], np.uint8))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [0.0, 0.2, 1.0])


# ---------------------------------------------------------------------------
# load_dataset
# ---------------------------------------------------------------------------
def test_load_dataset_names_and_options(tmp_path):
    with pytest.raises(ValueError, match="cifar10, mnist, fashion-mnist, svhn, synthetic"):
        data.load_dataset("stl10")
    with pytest.raises(ValueError, match="unknown preprocess 'whiten'"):
        data.load_dataset("synthetic", preprocess="whiten")
    with pytest.raises(ValueError, match="floats already"):
        data.load_dataset("synthetic", preprocess="scale")
    with pytest.raises(TypeError, match="'synthetic' only"):
        data.load_dataset("mnist", data_dir=tmp_path, n_train=10)


def test_fashion_mnist_missing(tmp_path, monkeypatch):
    monkeypatch.setattr(mnist, "DEBIAN_FASHION_MNIST", tmp_path / "no-debian-copy")
    with pytest.raises(DatasetNotFoundError, match="Fashion-MNIST: train-images"):
        data.load_dataset("Fashion_MNIST", data_dir=tmp_path, download=False)


def test_load_dataset_mnist_scaled(shared_data_dir):
    ds = data.load_dataset("MNIST", data_dir=shared_data_dir, train_subset=1000)
    assert ds.x_train.shape == (1000, 1, 28, 28) and ds.x_train.dtype == np.float32
    assert ds.x_test.shape == (10000, 1, 28, 28)
    assert 0.0 <= ds.x_train.min() and ds.x_train.max() <= 1.0 and ds.x_train.max() > 0.99
    assert ds.preprocess == "scale" and ds.input_shape == (1, 28, 28)
    raw = data.load_dataset("mnist", data_dir=shared_data_dir, preprocess="none")
    assert raw.x_train.dtype == np.uint8 and len(raw.x_train) == 60000
    assert "mnist" in repr(raw)


# ---------------------------------------------------------------------------
# Where the data are and where caches go (data/location.py)
# ---------------------------------------------------------------------------
@pytest.fixture
def checkout(tmp_path, monkeypatch):
    """A fake checkout ``tmp/course/proj`` (its ``shared/datasets`` not made yet), no env."""
    root = tmp_path / "course" / "proj"
    root.mkdir(parents=True)
    monkeypatch.setattr(location, "checkout_root", lambda: root)
    for name in ("TINYPROJ_DATA", "TINYPROJ_CACHE", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    return root


def test_data_dir_resolution_order(checkout, tmp_path, monkeypatch):
    # 4. nothing else: <checkout>/datasets (need not exist)
    assert data.data_dir() == checkout / "datasets"
    # 3. ../shared/datasets beside the checkout, once it exists
    shared = checkout.parent / "shared" / "datasets"
    shared.mkdir(parents=True)
    assert data.data_dir() == shared
    # 2. $TINYPROJ_DATA beats it (an empty value counts as unset)
    monkeypatch.setenv("TINYPROJ_DATA", "")
    assert data.data_dir() == shared
    monkeypatch.setenv("TINYPROJ_DATA", str(tmp_path / "env"))
    assert data.data_dir() == tmp_path / "env"
    # 1. the value given beats everything
    assert data.data_dir(tmp_path / "given") == tmp_path / "given"
    # the old names give the same answers
    assert data.default_data_dir() == tmp_path / "env"
    assert files.resolve_data_dir(tmp_path / "given") == tmp_path / "given"


def test_data_dir_when_installed_is_datasets_in_cwd(checkout, tmp_path, monkeypatch):
    monkeypatch.setattr(location, "checkout_root", lambda: None)    # site-packages
    monkeypatch.chdir(tmp_path)
    assert data.data_dir() == tmp_path / "datasets"


def test_data_dir_is_absolute(checkout, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert data.data_dir("rel/data") == tmp_path / "rel" / "data"
    assert data.data_dir("rel/../data").is_absolute() and ".." not in data.data_dir("a/..").parts
    monkeypatch.setenv("TINYPROJ_DATA", "envdir")
    assert data.data_dir() == tmp_path / "envdir"
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert data.data_dir("~/d") == tmp_path / "home" / "d"
    for path in (data.data_dir(), data.cache_dir(), data.cache_dir("c")):
        assert path.is_absolute()


def test_a_file_given_as_data_dir_is_refused(checkout, tmp_path, monkeypatch):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("not a folder")
    with pytest.raises(UserError, match="--data-dir.*is a file, not a folder") as err:
        data.data_dir(a_file)
    assert err.value.flag == "--data-dir"
    monkeypatch.setenv("TINYPROJ_DATA", str(a_file))
    with pytest.raises(UserError, match=r"\$TINYPROJ_DATA"):
        data.data_dir()
    # the loaders refuse it before reading anything
    with pytest.raises(UserError, match="not a folder"):
        data.load_dataset("mnist", data_dir=a_file, download=False)
    monkeypatch.setenv("TINYPROJ_CACHE", str(a_file))
    with pytest.raises(UserError, match="TINYPROJ_CACHE"):
        data.cache_dir()


def test_cache_dir_resolution_order(checkout, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert data.cache_dir() == tmp_path / "home" / ".cache" / "tinyproj"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/ignored")     # the XDG spec: absolute only
    assert data.cache_dir() == tmp_path / "home" / ".cache" / "tinyproj"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert data.cache_dir() == tmp_path / "xdg" / "tinyproj"
    monkeypatch.setenv("TINYPROJ_CACHE", str(tmp_path / "mine"))
    assert data.cache_dir() == tmp_path / "mine"
    assert data.cache_dir(tmp_path / "given") == tmp_path / "given"


def test_whitening_cache_goes_to_the_cache_dir_never_the_data_dir(checkout, shared_data_dir,
                                                                 tmp_path, monkeypatch):
    folder = tmp_path / "data"                       # a data folder the user could write to
    folder.mkdir()
    (folder / "mnist").symlink_to(shared_data_dir / "mnist")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")               # no "could not write the cache" either
        data.load_dataset("mnist", data_dir=folder, preprocess="gcn_zca", train_subset=200)
    assert sorted(p.name for p in folder.iterdir()) == ["mnist"]
    assert len(list((tmp_path / "xdg" / "tinyproj").glob("mnist-gcn_zca-*.npz"))) == 1
    monkeypatch.setenv("TINYPROJ_CACHE", str(tmp_path / "mine"))
    data.load_dataset("mnist", data_dir=folder, preprocess="gcn_zca", train_subset=200)
    assert len(list((tmp_path / "mine").glob("mnist-gcn_zca-*.npz"))) == 1


@pytest.fixture
def umask():
    """Set the process umask for one test, and restore it afterwards."""
    old = os.umask(0o022)
    yield os.umask
    os.umask(old)


def test_files_written_respect_the_umask(tmp_path, umask):
    umask(0o022)
    path = files.atomic_save_npz(tmp_path / "a.npz", x=np.zeros(3))
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    umask(0o077)
    path = files.atomic_save_npz(tmp_path / "b.npz", x=np.zeros(3))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    umask(0o022)
    data.load_dataset("synthetic", preprocess="gcn_zca", cache=True, cache_dir=tmp_path / "c",
                      n_train=50, n_test=10, shape=(2, 2, 2))
    (cached,) = (tmp_path / "c").glob("*.npz")
    assert stat.S_IMODE(cached.stat().st_mode) == 0o644
    assert os.umask(0o022) == 0o022                  # reading the umask did not change it


def test_download_sets_umask_permissions(tmp_path, monkeypatch, umask):
    import pooch

    def fake_retrieve(url, known_hash, fname, path, progressbar):
        target = Path(path) / fname
        target.write_bytes(b"x")
        os.chmod(target, 0o600)                      # as pooch's temporary file leaves it
        return str(target)

    monkeypatch.setattr(pooch, "retrieve", fake_retrieve)
    umask(0o022)
    got = files.download("https://example.invalid/f", "0" * 32, tmp_path, "f.gz")
    assert stat.S_IMODE(got.stat().st_mode) == 0o644


def test_unwritable_data_folder_is_a_clear_error(tmp_path, monkeypatch):
    import pooch
    monkeypatch.setattr(pooch, "retrieve", _no_download)
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(DatasetNotFoundError, match="cannot be created or written.*--data-dir"):
        files.download("https://example.invalid/f", "0" * 32, blocker / "sub", "f.gz")


def test_missing_dataset_names_folder_flag_and_fix(tmp_path, monkeypatch):
    import pooch

    def offline(*args, **kwargs):
        raise ConnectionError("no network")

    monkeypatch.setattr(pooch, "retrieve", offline)
    with pytest.raises(UserError) as err:
        data.load_dataset("mnist", data_dir=tmp_path)            # download allowed, but offline
    text = str(err.value)
    assert str(tmp_path / "mnist") in text and "--data-dir" in text and "TINYPROJ_DATA" in text
    assert "no internet access" in text and err.value.flag == "--data-dir"
    with pytest.raises(UserError) as err:
        data.load_dataset("cifar10", data_dir=tmp_path, download=False)
    text = str(err.value)
    assert str(tmp_path / "cifar-10-batches-py") in text and "--data-dir" in text
    assert "cifar-10-python.tar.gz" in text


def test_first_whitening_says_so_on_stderr(tmp_path, capsys):
    opts = dict(preprocess="gcn_zca", cache=True, cache_dir=tmp_path, n_train=5000, n_test=10,
                shape=(1, 2, 2))
    data.load_dataset("synthetic", **opts)
    err = capsys.readouterr().err
    assert "whitening synthetic" in err and f"cached in {tmp_path}" in err
    data.load_dataset("synthetic", **opts)                         # from the cache: quiet
    assert capsys.readouterr().err == ""


def test_dataset_shapes_without_loading():
    assert data.dataset_shape("cifar10") == ((3, 32, 32), 10)
    assert data.dataset_shape("Fashion_MNIST") == ((1, 28, 28), 10)
    assert data.dataset_shape("imagenet") == ((3, 227, 227), 1000)   # AlexNet's 227
    synthetic = data.load_dataset("synthetic")
    assert data.dataset_shape("synthetic")[0] == synthetic.input_shape
    assert data.DATASET_SIZES["synthetic"] == (len(synthetic.x_train), len(synthetic.x_test))
    assert set(data.DATASET_SIZES) == set(data.DATASET_SHAPES)
    assert data.dataset_shape("SVHN") == ((3, 32, 32), 10)
    with pytest.raises(UserError, match="--dataset.*stl10"):
        data.dataset_shape("stl10")
    with pytest.raises(UserError, match="streamed"):
        data.load_dataset("imagenet")


def test_locate_imagenet(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="image-net.org") as err:
        data.locate_imagenet(tmp_path)
    assert str(tmp_path / "imagenet") in str(err.value)
    for sub in ("train", "val"):
        (tmp_path / sub).mkdir()
    assert data.locate_imagenet(tmp_path) == tmp_path          # a data_dir that is ImageNet
    for sub in ("train", "val"):
        (tmp_path / "imagenet" / sub).mkdir(parents=True)
    assert data.locate_imagenet(tmp_path) == tmp_path / "imagenet"


def test_synthetic_is_learnable_and_deterministic():
    x, y = data.synthetic_classification(600, shape=(3, 8, 8), num_classes=5, seed=3)
    x2, y2 = data.synthetic_classification(600, shape=(3, 8, 8), num_classes=5, seed=3)
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(y, y2)
    assert x.dtype == np.float32 and y.dtype == np.int64 and x.shape == (600, 3, 8, 8)
    assert np.bincount(y).tolist() == [120] * 5
    # a nearest-class-mean classifier fit on 500 examples classifies the other 100
    flat = x.reshape(600, -1)
    means = np.stack([flat[:500][y[:500] == c].mean(axis=0) for c in range(5)])
    pred = np.argmin(((flat[500:, None, :] - means) ** 2).sum(axis=-1), axis=1)
    assert (pred == y[500:]).mean() > 0.9


# ---------------------------------------------------------------------------
# Splits and minibatches
# ---------------------------------------------------------------------------
def test_train_val_split_sizes():
    x, y = np.zeros((50000, 1)), np.arange(50000)
    x_tr, y_tr, x_val, y_val = data.train_val_split(x, y, n_val=5000)
    assert len(x_tr) == len(y_tr) == 45000 and len(x_val) == len(y_val) == 5000
    assert y_val[0] == 45000 and y_val[-1] == 49999
    with pytest.raises(ValueError, match="n_val=60000"):
        data.train_val_split(x, y, n_val=60000)
    with pytest.raises(ValueError, match="x has 50000 examples but y has 3"):
        data.train_val_split(x, y[:3])


def test_minibatches_cover_every_index_once():
    n = 103
    x = np.arange(n, dtype=np.uint8).reshape(n, 1)
    y = np.arange(n)
    seen = []
    batches = list(data.iterate_minibatches(x, y, 10, rng=backend.make_rng(7)))
    assert len(batches) == data.num_batches(n, 10) == 11
    for xb, yb in batches:
        assert xb.dtype == np.float32 and yb.dtype == np.int64
        np.testing.assert_array_equal(backend.to_numpy(xb)[:, 0], backend.to_numpy(yb))
        seen += backend.to_numpy(yb).tolist()
    assert sorted(seen) == list(range(n)) and seen != list(range(n))
    again = [backend.to_numpy(yb).tolist()
             for _, yb in data.iterate_minibatches(x, y, 10, rng=backend.make_rng(7))]
    assert sum(again, []) == seen  # same seed, same order
    other = [backend.to_numpy(yb).tolist()
             for _, yb in data.iterate_minibatches(x, y, 10, rng=backend.make_rng(8))]
    assert sum(other, []) != seen


def test_minibatches_drop_last_and_no_shuffle():
    x, y = np.zeros((25, 2, 2)), np.arange(25)
    sizes = [len(yb) for _, yb in data.iterate_minibatches(x, y, 10, shuffle=False,
                                                          drop_last=True)]
    assert sizes == [10, 10] and data.num_batches(25, 10, drop_last=True) == 2
    order = [backend.to_numpy(yb).tolist()
             for _, yb in data.iterate_minibatches(x, y, 10, shuffle=False)]
    assert sum(order, []) == list(range(25))
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        next(data.iterate_minibatches(x, y, 0))
    with pytest.raises(ValueError, match="must match"):
        next(data.iterate_minibatches(x, y[:5], 4))


# ---------------------------------------------------------------------------
# ImageFolder
# ---------------------------------------------------------------------------
@pytest.fixture
def image_root(tmp_path):
    from PIL import Image
    rng = np.random.default_rng(0)
    root = tmp_path / "images"
    sizes = {"zebra": [(300, 260), (256, 400)], "ant": [(320, 240)], "bee": [(500, 300)]}
    for name, shapes in sizes.items():
        (root / name).mkdir(parents=True)
        for i, (w, h) in enumerate(shapes):
            pixels = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / name / f"img{i}.JPEG")
    Image.fromarray(rng.integers(0, 256, (240, 240), dtype=np.uint8), mode="L").save(
        root / "ant" / "grey.png")
    (root / "bee" / "notes.txt").write_text("not an image")
    return root


def test_image_folder_lists_sorted_and_batches(image_root):
    folder = data.ImageFolder(image_root)
    assert folder.classes == ["ant", "bee", "zebra"]
    assert [(p.name, label) for p, label in folder.samples] == [
        ("grey.png", 0), ("img0.JPEG", 0), ("img0.JPEG", 1), ("img0.JPEG", 2), ("img1.JPEG", 2)]
    assert len(folder) == 5
    image, label = folder[0]
    assert image.shape == (3, 224, 224) and image.dtype == np.uint8 and label == 0
    batches = list(folder.batches(2))
    assert [b.shape for b, _ in batches] == [(2, 3, 224, 224), (2, 3, 224, 224), (1, 3, 224, 224)]
    assert np.concatenate([l for _, l in batches]).tolist() == [0, 0, 1, 2, 2]
    shuffled = np.concatenate([l for _, l in folder.batches(2, rng=backend.make_rng(0),
                                                            shuffle=True)])
    assert sorted(shuffled.tolist()) == [0, 0, 1, 2, 2]
    small = data.ImageFolder(image_root, resize=64, crop=32)
    assert small[3][0].shape == (3, 32, 32)
    normalized = data.normalize_imagenet(batches[0][0])
    assert normalized.dtype == np.float32 and normalized.shape == (2, 3, 224, 224)


def test_load_image_resize_and_center_crop(tmp_path):
    from PIL import Image
    pixels = np.arange(8 * 10 * 3, dtype=np.uint8).reshape(8, 10, 3)  # H=8, W=10
    Image.fromarray(pixels).save(tmp_path / "a.png")
    crop = data.load_image(tmp_path / "a.png", resize=None, crop=4)
    np.testing.assert_array_equal(crop, pixels[2:6, 3:7].transpose(2, 0, 1))
    resized = data.load_image(tmp_path / "a.png", resize=16, crop=None)
    assert resized.shape == (3, 16, 20)  # shorter side (H) to 16, aspect kept


def test_image_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a folder"):
        data.ImageFolder(tmp_path / "nowhere")
    (tmp_path / "cls").mkdir()
    with pytest.raises(FileNotFoundError, match="no images"):
        data.ImageFolder(tmp_path)
    (tmp_path / "cls" / "broken.jpg").write_bytes(b"not a jpeg")
    folder = data.ImageFolder(tmp_path)
    with pytest.raises(ValueError, match="broken.jpg"):
        folder[0]


def test_synthetic_drawn_in_float32_is_another_deterministic_set_of_the_same_form():
    from tinyproj.data import synthetic_classification
    x64, y64 = synthetic_classification(40, shape=(2, 3), seed=5)
    x32, y32 = synthetic_classification(40, shape=(2, 3), seed=5, dtype=np.float32)
    again, _ = synthetic_classification(40, shape=(2, 3), seed=5, dtype=np.float32)
    assert x32.dtype == x64.dtype == np.float32 and x32.shape == x64.shape == (40, 2, 3)
    np.testing.assert_array_equal(x32, again)
    assert not np.array_equal(x32, x64)                   # other numbers from the same seed
    assert np.bincount(y32).tolist() == [4] * 10
