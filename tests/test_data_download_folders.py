"""Which folders a download may create: the data folder itself when its parent exists, and the
dataset's own folder in it — never a chain of folders from a mistyped path. A failed download
removes the folders it made, and only those (tinyproj/data/files.py, ``download``)."""
from pathlib import Path

import pytest

from tinyproj import data
from tinyproj.data import files
from tinyproj.data.files import DatasetNotFoundError


def _never_called(*args, **kwargs):
    raise AssertionError("pooch.retrieve was called for a refused folder")


def _offline(*args, **kwargs):
    raise ConnectionError("no network")


def _writes_a_file(url, known_hash=None, fname=None, path=None, progressbar=False, **kw):
    target = Path(path) / fname
    target.write_bytes(b"x")
    return str(target)


def _tree(path):
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


@pytest.mark.parametrize("download", [
    lambda root: data.download_mnist(root),
    lambda root: data.download_svhn(root),
    lambda root: data.download_cifar10(root),
    lambda root: files.download("https://example.invalid/f", "0" * 32, root / "sub", "f",
                                root=root),
], ids=["mnist", "svhn", "cifar10", "files.download"])
def test_a_data_folder_whose_parent_is_missing_is_refused_and_nothing_is_made(
        tmp_path, monkeypatch, download):
    import pooch
    monkeypatch.setattr(pooch, "retrieve", _never_called)
    with pytest.raises(DatasetNotFoundError) as err:
        download(tmp_path / "typo" / "data")
    text = str(err.value)
    assert f"parent folder {tmp_path / 'typo'} " in text and "does not exist" in text
    assert err.value.flag == "--data-dir"
    assert _tree(tmp_path) == []


def test_the_data_folder_and_the_dataset_folder_are_made_when_the_parent_exists(
        tmp_path, monkeypatch):
    import pooch
    monkeypatch.setattr(pooch, "retrieve", _writes_a_file)
    folder = data.download_mnist(tmp_path / "data")
    assert folder == tmp_path / "data" / "mnist"
    assert len(list(folder.iterdir())) == 4


def test_a_failed_download_removes_only_the_folders_it_made(tmp_path, monkeypatch):
    import pooch
    monkeypatch.setattr(pooch, "retrieve", _offline)
    with pytest.raises(DatasetNotFoundError, match="could not download"):
        data.download_mnist(tmp_path / "new")                # made new/ and new/mnist/
    assert _tree(tmp_path) == []
    root = tmp_path / "kept"
    (root / "cifar-10-batches-py").mkdir(parents=True)        # a folder that was there
    with pytest.raises(DatasetNotFoundError):
        data.download_svhn(root)                              # made kept/svhn/ only
    assert _tree(tmp_path) == ["kept", "kept/cifar-10-batches-py"]
    (root / "svhn").mkdir()                                   # an empty dataset folder stays
    with pytest.raises(DatasetNotFoundError):
        data.download_svhn(root)
    assert _tree(tmp_path) == ["kept", "kept/cifar-10-batches-py", "kept/svhn"]


def test_a_file_in_the_way_is_a_clear_error_and_leaves_the_folders_it_made_removed(
        tmp_path, monkeypatch):
    import pooch
    monkeypatch.setattr(pooch, "retrieve", _never_called)
    (tmp_path / "root").mkdir()
    (tmp_path / "root" / "sub").write_text("")                # a file where a folder goes
    with pytest.raises(DatasetNotFoundError, match="cannot be created or written"):
        files.download("https://example.invalid/f", "0" * 32, tmp_path / "root" / "sub" / "x",
                       "f", root=tmp_path / "root")
    assert _tree(tmp_path) == ["root", "root/sub"]
