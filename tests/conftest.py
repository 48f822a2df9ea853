import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from helpers import digits_splits, trained_cnn  # noqa: E402


@pytest.fixture(scope="session")
def splits():
    return digits_splits()


@pytest.fixture(scope="session")
def cnn(splits):
    return trained_cnn(splits)
