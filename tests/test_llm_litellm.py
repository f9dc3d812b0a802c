"""The litellm model against a fake OpenAI-compatible server, alone and through the engine.

Nothing here leaves 127.0.0.1: the fake server (tests/fake_openai.py) answers
every call, and litellm is made offline by playground.llm.litellm_model.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from playground.engine import Runtime
from playground.engine import events as ev
from playground.errors import (
    ModelError,
    ModelRequestError,
    ModelTimeout,
    ProviderError,
    RateLimited,
)
from playground.llm.base import ModelRequest, ToolCall, ToolDef
from playground.llm.litellm_model import (
    LITELLM_LOGGERS,
    OFFLINE_ENV,
    LiteLLM,
    load_litellm,
    log_path,
    preload,
)
from playground.spec import load_system
from tests.fake_openai import Cut, FakeOpenAI, FakeToolCall, Reply, Stall, Status
from tests.helpers import kinds, of_kind

KEY = "sk-test-not-a-real-key-4242"
ROOT = Path(__file__).resolve().parent.parent
LOOPBACK = ("127.0.0.1", "::1", "localhost")

# litellm's own code trips pydantic's deprecation warnings on every chunk.
pytestmark = pytest.mark.filterwarnings("ignore::pydantic.warnings.PydanticDeprecatedSince211")


@pytest.fixture(scope="module", autouse=True)
def litellm() -> Any:
    """Import litellm once for the module (about 3 s), outside any test's timing."""
    return load_litellm()


@pytest.fixture(autouse=True)
def _fake_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_KEY", KEY)


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Refuse, and fail the test on, any connection beyond 127.0.0.1."""
    real_connect = socket.socket.connect
    refused: list[Any] = []

    def connect(self: socket.socket, address: Any) -> None:
        if self.family in (socket.AF_INET, socket.AF_INET6) and address[0] not in LOOPBACK:
            refused.append(address)
            raise OSError(f"test blocked a connection to {address!r}")
        real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    yield
    assert not refused, f"the test tried to leave loopback: {refused}"


def request_to(
    server: FakeOpenAI,
    *,
    model: str = "openai/x",
    timeout_s: float = 5.0,
    messages: list[dict[str, Any]] | None = None,
    tools: list[ToolDef] | None = None,
    **settings: Any,
) -> ModelRequest:
    return ModelRequest(
        agent="helper",
        model=model,
        messages=messages
        or [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Say something."},
        ],
        tools=tools or [],
        settings={"api_base": server.base_url, "api_key_env": "FAKE_KEY", **settings},
        timeout_s=timeout_s,
        activation="s:1",
    )


LOOKUP = ToolDef(
    "lookup_invoice",
    "Find an invoice.",
    {
        "type": "object",
        "properties": {"customer_id": {"type": "string"}},
        "required": ["customer_id"],
    },
)


# -- text, streamed and plain -----------------------------------------------------------


async def test_streamed_text_arrives_as_ordered_deltas(fake_openai: FakeOpenAI) -> None:
    fake_openai.push(Reply("The quick brown fox", usage=(11, 7)))
    deltas: list[str] = []
    response = await LiteLLM().complete(request_to(fake_openai), deltas.append)

    assert deltas == ["The ", "quick ", "brown ", "fox"]
    assert response.text == "The quick brown fox"
    assert response.tool_calls == []
    assert (response.input_tokens, response.output_tokens) == (11, 7)
    assert response.model == "openai/x"
    assert response.first_token_ms is not None and response.first_token_ms >= 0
    body = fake_openai.requests[0]
    assert body["model"] == "x"
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Say something."},
    ]
    assert "tools" not in body


async def test_plain_response_when_streaming_is_off(fake_openai: FakeOpenAI) -> None:
    fake_openai.push(Reply("hello world", usage=(5, 2)))
    deltas: list[str] = []
    response = await LiteLLM().complete(request_to(fake_openai, stream=False), deltas.append)

    assert not fake_openai.requests[0].get("stream")
    assert response.text == "hello world"
    assert deltas == ["hello world"]
    assert (response.input_tokens, response.output_tokens) == (5, 2)


async def test_settings_are_passed_through(fake_openai: FakeOpenAI) -> None:
    fake_openai.push(Reply("ok"))
    await LiteLLM().complete(request_to(fake_openai, temperature=0.25, max_tokens=33))
    body = fake_openai.requests[0]
    assert body["temperature"] == 0.25
    assert body["max_tokens"] == 33
    assert "api_key_env" not in json.dumps(body)


# -- tool calls -------------------------------------------------------------------------


async def test_streamed_tool_call_fragments_are_assembled(fake_openai: FakeOpenAI) -> None:
    fake_openai.push(
        Reply(
            tool_calls=[
                FakeToolCall("lookup_invoice", {"customer_id": "C-1"}, id="call_a"),
                FakeToolCall(
                    "transfer_to_billing",
                    {"customer_id": "C-1", "question": "why twice?"},
                    id="call_b",
                ),
            ],
            arg_chunk=4,
            usage=(20, 9),
        )
    )
    deltas: list[str] = []
    response = await LiteLLM().complete(request_to(fake_openai, tools=[LOOKUP]), deltas.append)

    assert response.tool_calls == [
        ToolCall("call_a", "lookup_invoice", '{"customer_id": "C-1"}'),
        ToolCall("call_b", "transfer_to_billing", '{"customer_id": "C-1", "question": "why twice?"}'),
    ]
    assert response.text == ""
    assert deltas == []
    assert (response.input_tokens, response.output_tokens) == (20, 9)
    assert fake_openai.requests[0]["tools"] == [LOOKUP.as_openai()]


async def test_plain_tool_calls(fake_openai: FakeOpenAI) -> None:
    fake_openai.push(
        Reply(tool_calls=[FakeToolCall("lookup_invoice", '{"customer_id": "C-9"}', id="call_z")])
    )
    response = await LiteLLM().complete(request_to(fake_openai, tools=[LOOKUP], stream=False))
    assert response.tool_calls == [ToolCall("call_z", "lookup_invoice", '{"customer_id": "C-9"}')]


async def test_tool_turns_are_sent_in_openai_format(fake_openai: FakeOpenAI) -> None:
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": "Answer billing questions."},
        {"role": "user", "content": "my invoice?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "lookup_invoice", "arguments": '{"customer_id": "C-1"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "INV-1042: 30 EUR"},
    ]
    before = json.dumps(messages)
    fake_openai.push(Reply("Your last invoice was INV-1042."))
    response = await LiteLLM().complete(request_to(fake_openai, messages=messages, tools=[LOOKUP]))

    assert response.text == "Your last invoice was INV-1042."
    sent = fake_openai.requests[0]["messages"]
    assert sent[2]["role"] == "assistant"
    assert not sent[2].get("content")
    assert sent[2]["tool_calls"] == messages[2]["tool_calls"]
    assert sent[3] == {"role": "tool", "tool_call_id": "call_1", "content": "INV-1042: 30 EUR"}
    assert json.dumps(messages) == before  # the engine's own list is left alone


# -- cost ---------------------------------------------------------------------------------


async def test_cost_comes_from_the_map_for_a_known_model(fake_openai: FakeOpenAI, litellm: Any) -> None:
    fake_openai.push(Reply("priced", usage=(1000, 500)))
    response = await LiteLLM().complete(request_to(fake_openai, model="openai/gpt-4o-mini"))
    prices = litellm.model_cost["gpt-4o-mini"]
    expected = 1000 * prices["input_cost_per_token"] + 500 * prices["output_cost_per_token"]
    assert expected > 0
    assert response.cost_usd == pytest.approx(expected)
    assert fake_openai.requests[0]["model"] == "gpt-4o-mini"


async def test_cost_is_none_for_a_model_the_map_does_not_know(fake_openai: FakeOpenAI) -> None:
    fake_openai.push(Reply("unpriced", usage=(1000, 500)))
    response = await LiteLLM().complete(request_to(fake_openai, model="openai/x"))
    assert response.cost_usd is None


async def test_cost_of_a_registered_model(fake_openai: FakeOpenAI, litellm: Any) -> None:
    litellm.register_model(
        {
            "pg-test-priced": {
                "input_cost_per_token": 1e-6,
                "output_cost_per_token": 2e-6,
                "litellm_provider": "openai",
                "mode": "chat",
            }
        }
    )
    fake_openai.push(Reply("priced", usage=(1000, 500)))
    response = await LiteLLM().complete(request_to(fake_openai, model="openai/pg-test-priced"))
    assert response.cost_usd == pytest.approx(1000 * 1e-6 + 500 * 2e-6)


# -- errors -------------------------------------------------------------------------------


def _readable(error: ModelError) -> str:
    message = str(error)
    assert "\n" not in message
    assert len(message) < 400
    assert "'openai/x'" in message
    assert error.model == "openai/x"
    return message


async def test_429_is_rate_limited_and_sent_once(fake_openai: FakeOpenAI) -> None:
    fake_openai.push(Status(429, "slow down"))
    with pytest.raises(RateLimited) as caught:
        await LiteLLM().complete(request_to(fake_openai))
    assert caught.value.retryable
    assert "slow down" in _readable(caught.value)
    assert fake_openai.count == 1  # neither litellm nor the openai SDK retried on their own


async def test_500_is_a_provider_error(fake_openai: FakeOpenAI) -> None:
    fake_openai.push(Status(500, "boom"))
    with pytest.raises(ProviderError) as caught:
        await LiteLLM().complete(request_to(fake_openai))
    assert type(caught.value) is ProviderError
    assert caught.value.retryable
    assert "boom" in _readable(caught.value)
    assert fake_openai.count == 1


@pytest.mark.parametrize("status", [400, 401, 403, 404])
async def test_refused_requests_are_not_retryable(fake_openai: FakeOpenAI, status: int) -> None:
    fake_openai.push(Status(status, f"refused with {status}"))
    with pytest.raises(ModelRequestError) as caught:
        await LiteLLM().complete(request_to(fake_openai))
    assert not caught.value.retryable
    assert f"refused with {status}" in _readable(caught.value)


async def test_a_stall_times_out_within_the_call_timeout(fake_openai: FakeOpenAI) -> None:
    fake_openai.push(Stall(30))
    started = time.perf_counter()
    with pytest.raises(ModelTimeout) as caught:
        await LiteLLM().complete(request_to(fake_openai, timeout_s=0.5))
    elapsed = time.perf_counter() - started
    assert 0.4 < elapsed < 1.5
    assert caught.value.retryable
    _readable(caught.value)


async def test_a_stream_cut_mid_way_is_a_provider_error(fake_openai: FakeOpenAI) -> None:
    fake_openai.push(Cut("half of an answer"))
    deltas: list[str] = []
    with pytest.raises(ProviderError) as caught:
        await LiteLLM().complete(request_to(fake_openai), deltas.append)
    assert type(caught.value) is ProviderError
    assert "cut" in _readable(caught.value)
    assert "".join(deltas) == "half of an answer"


async def test_a_stream_ended_without_finishing_is_a_provider_error(
    fake_openai: FakeOpenAI,
) -> None:
    fake_openai.push(Cut("half of an answer", clean=True))
    with pytest.raises(ProviderError) as caught:
        await LiteLLM().complete(request_to(fake_openai))
    assert "ended before the model finished" in _readable(caught.value)


async def test_connection_refused_is_a_provider_error() -> None:
    with socket.socket() as probe:  # a loopback port that nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    request = ModelRequest(
        "helper",
        "openai/x",
        [{"role": "user", "content": "hi"}],
        settings={"api_base": f"http://127.0.0.1:{port}/v1", "api_key_env": "FAKE_KEY"},
        timeout_s=5,
    )
    with pytest.raises(ProviderError) as caught:
        await LiteLLM().complete(request)
    assert f"could not be reached at http://127.0.0.1:{port}/v1" in _readable(caught.value)


async def test_no_key_at_all_is_a_request_error(
    fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    request = request_to(fake_openai)
    del request.settings["api_key_env"]
    with pytest.raises(ModelRequestError) as caught:
        await LiteLLM().complete(request)
    assert "has no API key" in _readable(caught.value)
    assert fake_openai.count == 0


async def test_an_unknown_provider_is_a_request_error() -> None:
    request = ModelRequest("helper", "no-such-provider-model-xyz", [{"role": "user", "content": "hi"}])
    with pytest.raises(ModelRequestError) as caught:
        await LiteLLM().complete(request)
    assert "'no-such-provider-model-xyz' names no provider" in str(caught.value)


async def test_preload_imports_once() -> None:
    await preload()  # already loaded by the module fixture: returns at once
    assert load_litellm() is sys.modules["litellm"]


async def test_errors_of_on_delta_are_not_blamed_on_the_provider(fake_openai: FakeOpenAI) -> None:
    fake_openai.push(Reply("a b c"))

    def broken(text: str) -> None:
        raise RuntimeError("the sink broke")

    with pytest.raises(RuntimeError, match="the sink broke"):
        await LiteLLM().complete(request_to(fake_openai), broken)


# -- keys and settings ----------------------------------------------------------------------


async def test_the_api_key_is_read_from_the_environment_and_never_returned(
    fake_openai: FakeOpenAI,
) -> None:
    fake_openai.push(Reply("fine"), Status(401, f"Incorrect API key provided: {KEY}"))
    response = await LiteLLM().complete(request_to(fake_openai))
    assert fake_openai.received[0].headers["Authorization"] == f"Bearer {KEY}"
    assert KEY not in repr(response)

    with pytest.raises(ModelRequestError) as caught:
        await LiteLLM().complete(request_to(fake_openai))
    assert KEY not in str(caught.value)
    assert "Incorrect API key provided: ***" in str(caught.value)


async def test_a_missing_key_variable_is_a_request_error(fake_openai: FakeOpenAI) -> None:
    request = request_to(fake_openai, api_key_env="PLAYGROUND_TEST_UNSET_KEY")
    with pytest.raises(ModelRequestError) as caught:
        await LiteLLM().complete(request)
    assert "'PLAYGROUND_TEST_UNSET_KEY'" in str(caught.value)
    assert "'helper'" in str(caught.value)
    assert fake_openai.count == 0


async def test_settings_the_playground_owns_are_refused(fake_openai: FakeOpenAI) -> None:
    with pytest.raises(ModelRequestError, match=r"'num_retries'.*limits\.retries"):
        await LiteLLM().complete(request_to(fake_openai, num_retries=3))
    assert fake_openai.count == 0


# -- import hygiene -------------------------------------------------------------------------


def test_litellm_logs_go_to_a_file_not_stderr(capfd: pytest.CaptureFixture[str]) -> None:
    for name in LITELLM_LOGGERS:
        logger = logging.getLogger(name)
        assert not logger.propagate
        assert logger.handlers
        assert all(isinstance(h, logging.FileHandler) for h in logger.handlers), logger.handlers
    marker = f"probe {time.time_ns()}"
    logging.getLogger("LiteLLM").error(marker)
    out, err = capfd.readouterr()
    assert marker not in out + err
    assert marker in log_path().read_text(encoding="utf-8")


OFFLINE_IMPORT = """
import os, socket, sys
import playground.engine, playground.llm.litellm_model as lm
assert "litellm" not in sys.modules, "litellm was imported eagerly"
reached = []
real_connect, real_lookup = socket.socket.connect, socket.getaddrinfo
def connect(self, address):
    reached.append(address)
    return real_connect(self, address)
def lookup(*args, **kwargs):
    reached.append(args[:2])
    return real_lookup(*args, **kwargs)
socket.socket.connect, socket.getaddrinfo = connect, lookup
lm.load_litellm()
assert "litellm" in sys.modules
assert not reached, f"importing litellm reached for the network: {reached}"
assert os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] == "True"
assert os.environ["HF_HUB_OFFLINE"] == "1"
"""


def test_litellm_is_imported_lazily_and_offline(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in OFFLINE_ENV and not k.startswith("LITELLM_")}
    env["PLAYGROUND_LOG_DIR"] = str(tmp_path)
    done = subprocess.run(
        [sys.executable, "-c", OFFLINE_IMPORT],
        cwd=ROOT,
        env=env,
        timeout=60,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout == ""
    assert done.stderr == ""


# -- end to end through the engine -----------------------------------------------------------


def router_system(
    tmp_path: Path,
    server: FakeOpenAI,
    *,
    router_model: str = "openai/x",
    fallbacks: str = "[]",
    billing_model: str = "openai/b",
    script: str = "",
) -> Any:
    settings = f"{{api_base: '{server.base_url}', api_key_env: FAKE_KEY}}"
    text = f"""\
name: fake-router
pattern: router
entry: router
limits: {{retries: 1, backoff_s: 0.01, call_timeout_s: 1}}
agents:
  router:
    model: {router_model}
    fallbacks: {fallbacks}
    model_settings: {settings}
    instructions: Route the request to a specialist.
    handoffs:
      - to: billing
        description: billing and invoices
        context: {{customer_id: str, question: str}}
{script}
  billing:
    model: {billing_model}
    model_settings: {settings}
    instructions: Answer billing questions.
    input: {{customer_id: str, question: str}}
"""
    path = tmp_path / "system.yaml"
    path.write_text(text, encoding="utf-8")
    return load_system(path)


HANDOFF = FakeToolCall("transfer_to_billing", {"customer_id": "C-7", "question": "Why twice?"})


def failures(result: Any) -> list[tuple[str, str, int]]:
    return [(e.model, e.error_type, e.attempt) for e in of_kind(result.events, ev.ModelFailed)]


def no_key_in(result: Any) -> None:
    dumped = json.dumps([e.model_dump(mode="json") for e in result.events]) + json.dumps(result.as_json())
    assert KEY not in dumped


async def test_a_streamed_handoff_arrives_at_its_target(tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    fake_openai.push(
        Reply(tool_calls=[HANDOFF], arg_chunk=3, model="x", usage=(40, 12)),
        Reply("Refund issued for C-7.", model="b", usage=(30, 6)),
    )
    live: list[Any] = []
    runtime = Runtime(router_system(tmp_path, fake_openai), live=[live.append])
    result = await runtime.run("I was charged twice")

    assert result.status == "completed", result.error
    assert result.path == ["router", "billing"]
    assert result.output == "Refund issued for C-7."
    streamed = [(e.agent, e.text) for e in live if e.kind == "token_delta"]
    assert streamed == [("billing", w) for w in ["Refund ", "issued ", "for ", "C-7."]]
    assert result.cost_usd == 0  # models the cost map does not know, and no price: override
    handoff = of_kind(result.events, ev.HandoffDelivered)[0]
    assert handoff.payload == {"customer_id": "C-7", "question": "Why twice?"}
    assert [t["function"]["name"] for t in fake_openai.requests[0]["tools"]] == ["transfer_to_billing"]
    billing_in = fake_openai.requests[1]["messages"][1]["content"]
    assert json.loads(billing_in) == {"customer_id": "C-7", "question": "Why twice?"}
    responded = of_kind(result.events, ev.ModelResponded)
    assert [(e.input_tokens, e.output_tokens) for e in responded] == [(40, 12), (30, 6)]
    assert result.tokens == {"input": 70, "output": 18}
    assert "model_failed" not in kinds(result.events)
    no_key_in(result)


async def test_429_and_500_are_retried(tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    fake_openai.push(
        Status(429, model="x"),
        Reply(tool_calls=[HANDOFF], model="x"),
        Status(500, model="b"),
        Reply("Done.", model="b"),
    )
    result = await Runtime(router_system(tmp_path, fake_openai)).run("charged twice")

    assert result.status == "completed", result.error
    assert result.path == ["router", "billing"]
    assert result.output == "Done."
    assert fake_openai.count == 4
    assert failures(result) == [("openai/x", "rate_limited", 1), ("openai/b", "provider_error", 1)]
    retries = of_kind(result.events, ev.RetryScheduled)
    assert [(e.model, e.attempt) for e in retries] == [("openai/x", 2), ("openai/b", 2)]
    sequence = [
        k
        for k in kinds(result.events)
        if k in ("model_requested", "model_failed", "retry_scheduled", "model_responded")
    ]
    assert (
        sequence
        == [
            "model_requested",
            "model_failed",
            "retry_scheduled",
            "model_requested",
            "model_responded",
        ]
        * 2
    )
    no_key_in(result)


async def test_a_stall_past_call_timeout_is_a_timeout_that_is_retried(
    tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    fake_openai.push(Stall(30, model="x"), Reply(tool_calls=[HANDOFF], model="x"), Reply("Done.", model="b"))
    started = time.perf_counter()
    result = await Runtime(router_system(tmp_path, fake_openai)).run("charged twice")

    assert result.status == "completed", result.error
    assert result.output == "Done."
    assert time.perf_counter() - started < 3
    assert failures(result) == [("openai/x", "timeout", 1)]
    failed = of_kind(result.events, ev.ModelFailed)[0]
    assert failed.retryable
    assert failed.latency_ms >= 900
    assert [e.attempt for e in of_kind(result.events, ev.RetryScheduled)] == [2]
    assert fake_openai.count_for("x") == 2


async def test_fallback_model_takes_over_after_retries(tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    fake_openai.push(
        Status(500, model="x"),
        Status(429, model="x"),
        Reply(tool_calls=[HANDOFF], model="y"),
        Reply("Done by billing.", model="b"),
    )
    system = router_system(tmp_path, fake_openai, fallbacks="[openai/y]")
    result = await Runtime(system).run("charged twice")

    assert result.status == "completed", result.error
    assert result.path == ["router", "billing"]
    assert result.output == "Done by billing."
    assert (fake_openai.count_for("x"), fake_openai.count_for("y")) == (2, 1)
    assert failures(result) == [("openai/x", "provider_error", 1), ("openai/x", "rate_limited", 2)]
    fallback = of_kind(result.events, ev.FallbackUsed)
    assert [(e.from_model, e.to_model) for e in fallback] == [("openai/x", "openai/y")]
    router_response = of_kind(result.events, ev.ModelResponded)[0]
    assert router_response.model == "openai/y"
    no_key_in(result)


async def test_scripted_fallback_takes_over_when_the_provider_is_down(
    tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    script = """\
    script:
      - handoff: billing
        context: {customer_id: "C-0", question: "{input}"}
"""
    fake_openai.push(Status(503, model="x"), Status(503, model="x"), Reply("Billing here.", model="b"))
    system = router_system(tmp_path, fake_openai, fallbacks="[scripted]", script=script)
    result = await Runtime(system).run("charged twice")

    assert result.status == "completed", result.error
    assert result.path == ["router", "billing"]
    assert result.output == "Billing here."
    assert [(e.from_model, e.to_model) for e in of_kind(result.events, ev.FallbackUsed)] == [
        ("openai/x", "scripted")
    ]
    assert of_kind(result.events, ev.HandoffDelivered)[0].payload == {
        "customer_id": "C-0",
        "question": "charged twice",
    }
    assert fake_openai.count_for("x") == 2


async def test_the_run_fails_clearly_when_every_model_fails(tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    fake_openai.push(*[Status(500, "down for maintenance") for _ in range(4)])
    system = router_system(tmp_path, fake_openai, fallbacks="[openai/y]")
    result = await Runtime(system).run("charged twice")

    assert result.status == "failed"
    assert result.path == ["router"]
    assert fake_openai.count == 4
    assert result.error is not None
    assert result.error["type"] == "provider_error"
    assert result.error["origin"] == "router"
    assert "openai/x, openai/y" in result.error["message"]
    assert "down for maintenance" in result.error["message"]


async def test_a_refused_request_is_not_retried_but_falls_back(
    tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    fake_openai.push(
        Status(401, "bad key", model="x"),
        Reply(tool_calls=[HANDOFF], model="y"),
        Reply("ok", model="b"),
    )
    system = router_system(tmp_path, fake_openai, fallbacks="[openai/y]")
    result = await Runtime(system).run("charged twice")

    assert result.status == "completed", result.error
    assert failures(result) == [("openai/x", "request_error", 1)]
    assert "retry_scheduled" not in kinds(result.events)
    assert fake_openai.count_for("x") == 1


async def test_a_response_with_two_tool_calls_runs_both_workers_at_once(
    tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    """Through real litellm: one streamed response asks two workers at once (tool-call
    fragments interleaved); each worker takes 0.6 s; the run takes well under 1.2 s."""
    settings = f"{{api_base: '{fake_openai.base_url}', api_key_env: FAKE_KEY}}"
    path = tmp_path / "system.yaml"
    path.write_text(
        f"""\
name: fake-supervisor
pattern: supervisor
entry: boss
agents:
  boss:
    model: openai/boss
    model_settings: {settings}
    delegates: [prices, reviews]
  prices:
    latency_ms: 600
    input: {{task: str}}
    script: [{{reply: "P({{task}})"}}]
  reviews:
    latency_ms: 600
    input: {{task: str}}
    script: [{{reply: "R({{task}})"}}]
""",
        encoding="utf-8",
    )
    fake_openai.push(
        Reply(
            tool_calls=[
                FakeToolCall("prices", {"task": "kettle prices"}, id="call_p"),
                FakeToolCall("reviews", {"task": "kettle reviews"}, id="call_r"),
            ],
            arg_chunk=4,
            model="boss",
        ),
        Reply("Kettles: cheap and liked.", model="boss"),
    )
    system = load_system(path)
    started = time.perf_counter()
    result = await Runtime(system).run("kettles")
    elapsed = time.perf_counter() - started

    assert result.status == "completed", result.error
    assert elapsed < 1.1, f"two 0.6 s workers took {elapsed:.2f} s"
    called = [(e.tool, e.call_id) for e in of_kind(result.events, ev.ToolCalled)]
    assert called == [("prices", "call_p"), ("reviews", "call_r")]
    answers = [m for m in fake_openai.requests[1]["messages"] if m["role"] == "tool"]
    assert [(m["tool_call_id"], m["content"]) for m in answers] == [
        ("call_p", "P(kettle prices)"),
        ("call_r", "R(kettle reviews)"),
    ]
    assert result.output == "Kettles: cheap and liked."


def guarded_system(tmp_path: Path, server: FakeOpenAI, tools: str, agents: str) -> Any:
    settings = f"{{api_base: '{server.base_url}', api_key_env: FAKE_KEY}}"
    path = tmp_path / "system.yaml"
    path.write_text(
        f"name: guarded\npattern: router\nentry: router\n"
        f"limits: {{retries: 0, max_validation_retries: 2, call_timeout_s: 5}}\n{tools}agents:\n"
        + agents.replace("SETTINGS", settings),
        encoding="utf-8",
    )
    return load_system(path)


async def test_a_model_that_ignores_schema_feedback_fails_the_run_after_the_declared_retries(
    tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    agents = """\
  router:
    model: openai/x
    model_settings: SETTINGS
    handoffs:
      - to: billing
        context:
          type: object
          properties: {customer_id: {type: string, pattern: "^C-[0-9]+$"}}
          required: [customer_id]
  billing:
    model: openai/b
    model_settings: SETTINGS
"""
    bad = FakeToolCall("transfer_to_billing", {"customer_id": "not-an-id"})
    fake_openai.push(*[Reply(tool_calls=[bad], model="x") for _ in range(3)])
    result = await Runtime(guarded_system(tmp_path, fake_openai, "", agents)).run("refund")
    assert result.status == "failed"
    assert result.error is not None and result.error["type"] == "invalid_handoff_payload"
    assert fake_openai.count == 3  # max_validation_retries = 2: the first call and two more
    # Each retry carried the feedback, field by field, to the real model.
    told = [m["content"] for m in fake_openai.requests[2]["messages"] if m["role"] == "tool"]
    assert len(told) == 2 and all("does not match '^C-[0-9]+$'" in t for t in told)


async def test_a_model_that_asks_for_a_side_effect_tool_twice_gets_it_run_once(
    tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    (tmp_path / "tools.py").write_text(
        "from pathlib import Path\n\n\ndef send_mail(to: str) -> str:\n"
        "    log = Path(__file__).with_name('sent.log')\n"
        "    log.write_text(log.read_text() + to + '\\n' if log.exists() else to + '\\n')\n"
        "    return 'sent to ' + to\n"
    )
    tools = "tools:\n  send_mail: {function: tools.py:send_mail, side_effects: true}\n"
    agents = """\
  router:
    model: openai/x
    model_settings: SETTINGS
    tools: [send_mail]
    handoffs: [{to: billing}]
  billing:
    model: openai/b
    model_settings: SETTINGS
"""
    mail = FakeToolCall("send_mail", {"to": "ann"})
    fake_openai.push(
        Reply(tool_calls=[mail], model="x"),
        Reply(tool_calls=[mail], model="x"),  # the model asks again, same arguments
        Reply("Done: mailed Ann.", model="x"),
    )
    result = await Runtime(guarded_system(tmp_path, fake_openai, tools, agents)).run("mail ann")
    assert result.status == "completed", result.error
    assert (tmp_path / "sent.log").read_text().splitlines() == ["ann"]
    returned = of_kind(result.events, ev.ToolReturned)
    assert [(r.result, r.side_effect_served) for r in returned] == [
        ("sent to ann", False),
        ("sent to ann", True),
    ]
