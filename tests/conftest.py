"""Shared pytest fixtures: the package's own tiny models and tokenizers (o1_pruner.testing; no downloads)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

from o1_pruner.testing import CHAT_TEMPLATE, char_tokenizer as make_char_tokenizer, save_tiny_model  # noqa: E402
from o1_pruner.testing import tiny_model as make_tiny_model  # noqa: E402,F401

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def char_tokenizer():
    return make_char_tokenizer()


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """Folder with a saved random-init tiny Qwen2 + char tokenizer, loadable with the Auto classes."""
    return save_tiny_model(tmp_path_factory.mktemp("tiny-model"))


@pytest.fixture(scope="session")
def shared_data():
    if not SHARED_DATA.exists():
        pytest.fail(f"benchmark data not found at {SHARED_DATA}: tests expect ../shared beside the repo")
    return SHARED_DATA
