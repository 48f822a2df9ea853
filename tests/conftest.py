import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))

from helpers import digits_splits, trained_cnn  # noqa: E402

# Tiny models gain nothing from intra-op threads, and a shared 2-core runner loses a lot to oversubscription.
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def splits():
    return digits_splits()


@pytest.fixture(scope="session")
def cnn(splits):
    return trained_cnn(splits)


@pytest.fixture(scope="session", autouse=True)
def no_stray_files_in_the_checkout():
    """Nothing a test runs may litter the repository root (libraries that dump debug files into the cwd)."""
    root = Path(__file__).parents[1]
    before = {p.name for p in root.iterdir()}
    yield
    stray = sorted({p.name for p in root.iterdir()} - before - {".pytest_cache", "runs", ".edgekit"})
    assert not stray, f"tests left files in {root}: {stray}"
