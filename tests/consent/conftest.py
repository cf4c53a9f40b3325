"""Fixtures for the consent tests: project keys in a temporary DEEPSHIELD_HOME."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture()
def keys_home(ds_home: Path) -> Path:
    from deepshield.labels.keys import init_keys

    init_keys(ds_home)
    return ds_home
