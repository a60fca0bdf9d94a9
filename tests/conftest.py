"""Shared pytest fixtures."""
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def shared_data_dir() -> Path:
    """The read-only real datasets next to the project (``../shared/datasets``), or skip.

    Users elsewhere will not have this folder; tests that need it skip cleanly.
    """
    path = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"
    if not path.is_dir():
        pytest.skip(f"no shared datasets folder at {path}")
    return path
