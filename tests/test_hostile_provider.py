"""A provider that answers badly or slowly never holds the event loop (issue 16, item 6).

litellm does CPU work for each response on the thread that calls it (seconds for a large
error body): the litellm model runs each call in a thread of its own and enforces
``timeout_s`` on the caller's side. These tests hold the library inside a call (on an
event nobody sets until the test is done) and check that the caller's timeout fires
anyway, which it could not if the library ran on the loop's thread. No wall-clock
figures are asserted.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from playground.engine import Runtime
from playground.errors import ModelError, ModelTimeout
from playground.llm.base import ModelRequest
from playground.llm.litellm_model import LiteLLM, load_litellm
from tests.fake_openai import FakeOpenAI, Raw, Reply
from tests.helpers import system_from

pytestmark = pytest.mark.filterwarnings("ignore::pydantic.warnings.PydanticDeprecatedSince211")

KEY = "sk-test-provider-key-0000"


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_KEY", KEY)


@pytest.fixture
def stuck(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """litellm held inside every call until the test ends; yields the threads it ran on."""
    litellm = load_litellm()
    real = litellm.completion
    release = threading.Event()
    threads: list[int] = []

    def held(*args: Any, **kwargs: Any) -> Any:
        threads.append(threading.get_ident())
        release.wait(60)
        return real(*args, **kwargs)

    monkeypatch.setattr(litellm, "completion", held)
    try:
        yield threads
    finally:
        release.set()


def request_to(server: FakeOpenAI, *, timeout_s: float = 5.0, **settings: Any) -> ModelRequest:
    return ModelRequest(
        agent="helper",
        model="openai/x",
        messages=[{"role": "user", "content": "Say something."}],
        tools=[],
        settings={"api_base": server.base_url, "api_key_env": "FAKE_KEY", **settings},
        timeout_s=timeout_s,
        activation="s:1",
    )


async def test_the_call_timeout_fires_while_the_library_is_busy(
    fake_openai: FakeOpenAI, stuck: list[int]
) -> None:
    fake_openai.push(Reply("never seen"))
    with pytest.raises(ModelTimeout):
        await LiteLLM().complete(request_to(fake_openai, timeout_s=0.3))
    assert stuck and stuck[0] != threading.get_ident()


async def test_the_run_timeout_fires_while_the_library_is_busy(
    tmp_path: Path, fake_openai: FakeOpenAI, stuck: list[int]
) -> None:
    system = system_from(
        tmp_path,
        f"""
        name: slow-provider
        pattern: router
        entry: a
        limits: {{timeout_s: 0.5, call_timeout_s: 30, retries: 0}}
        agents:
          a:
            model: openai/x
            model_settings: {{api_base: "{fake_openai.base_url}", api_key_env: FAKE_KEY}}
            handoffs: [{{to: b}}]
          b: {{}}
        """,
    )
    result = await Runtime(system).run("hello")
    assert result.status == "failed"
    assert result.error is not None and result.error["type"] == "timeout"
    assert stuck  # the provider call was still held when the run gave up


@pytest.mark.parametrize("stream", [False, True])
async def test_a_large_invalid_response_is_one_short_error(fake_openai: FakeOpenAI, stream: bool) -> None:
    fake_openai.push(Raw(json.dumps({"error": {"message": "x" * 512_000}})))
    with pytest.raises(ModelError) as caught:
        await LiteLLM().complete(request_to(fake_openai, timeout_s=60, stream=stream))
    assert len(str(caught.value)) < 400
    fake_openai.push(Raw("not json at all " * 10_000))
    with pytest.raises(ModelError) as caught:
        await LiteLLM().complete(request_to(fake_openai, timeout_s=60, stream=stream))
    assert len(str(caught.value)) < 400
