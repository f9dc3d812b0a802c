"""Fixtures shared by the tests."""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator

import pytest

from tests.fake_openai import FakeOpenAI

# Before anything imports litellm: its bundled price map, no tokenizer hub (shared/FACTS.md).
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# litellm's log file goes to a scratch folder, not the workspace's sessions/.
os.environ.setdefault("PLAYGROUND_LOG_DIR", os.path.join(tempfile.gettempdir(), "playground-test-logs"))


@pytest.fixture
async def fake_openai() -> AsyncIterator[FakeOpenAI]:
    """An OpenAI-compatible server on 127.0.0.1, in the test's event loop (tests/fake_openai.py)."""
    async with FakeOpenAI() as server:
        yield server
