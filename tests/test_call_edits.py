"""What the model saw, and an operator's edit of a held model call: headless, on the event stream."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from playground.engine import RunResult, Runtime, StepController
from playground.engine import events as ev
from playground.engine.call_edits import call_changes, check_call_edit, edited_messages, held_call
from playground.llm.base import LLM, ModelRequest
from playground.llm.scripted import ScriptedLLM
from playground.service import run_session
from playground.spec import System, load_system
from playground.spec.models import AgentSpec
from playground.store import Store
from tests.helpers import of_kind
from tests.test_engine import ROUTER, instant

REQUEST = "I was charged twice on my last invoice"
NEW_INSTRUCTIONS = "Route every request to technical support."


def router_with_settings() -> System:
    system = load_system(ROUTER)
    router = system.spec.agents["router"]
    settings = {"temperature": 0.2, "max_tokens": 300, "api_key_env": "ROUTER_KEY_VARIABLE"}
    system.spec.agents["router"] = router.model_copy(update={"model_settings": settings})
    return system


def seen_by_model(received: list[ModelRequest]) -> Any:
    """A model factory: the scripted model, keeping each request it is sent in ``received``."""

    class Recording(ScriptedLLM):
        async def complete(self, request: ModelRequest, on_delta: Any = None) -> Any:
            received.append(request)
            return await super().complete(request, on_delta)

    def factory(agent: AgentSpec, model: str) -> LLM:
        return Recording(agent.name, agent.script, 0.0, 0.0)

    return factory


async def run(system: System, text: str, **kw: Any) -> RunResult:
    return await Runtime(system, agents=instant(system), **kw).run(text)


async def test_a_model_request_records_the_tools_with_their_schemas_and_the_settings() -> None:
    system = router_with_settings()
    result = await run(system, REQUEST)
    router, billing = of_kind(result.events, ev.ModelRequested)[:2]
    assert router.messages[0]["role"] == "system"
    assert router.messages[0]["content"].startswith("You are the front desk")
    offered = {t["name"]: t for t in router.tool_schemas}
    assert set(offered) == set(router.tools)
    to_billing = offered["transfer_to_billing"]
    assert to_billing["description"] == "invoices, charges, refunds, payments"
    assert set(to_billing["parameters"]["properties"]) == {"customer_id", "question"}
    assert router.settings == {"temperature": 0.2, "max_tokens": 300, "api_key_env": "ROUTER_KEY_VARIABLE"}
    lookup = billing.tool_schemas[0]
    assert lookup["name"] == "lookup_invoice" and "customer_id" in lookup["parameters"]["properties"]
    assert billing.settings == {}


async def test_the_held_call_carries_what_is_about_to_be_sent() -> None:
    system = router_with_settings()
    controller = StepController(stepping=True)
    task = asyncio.create_task(run(system, REQUEST, controller=controller))
    gate = await controller.wait_paused()
    assert gate.kind == "model_call"
    assert gate.payload["instructions"] == system.spec.agents["router"].instructions
    assert [m["role"] for m in gate.payload["messages"]] == ["system", "user"]
    assert {t["name"] for t in gate.payload["tools"]} >= {"transfer_to_billing", "transfer_to_technical"}
    assert gate.payload["settings"]["temperature"] == 0.2
    controller.abort()
    await task


async def test_an_edited_message_at_a_held_call_is_what_the_model_receives() -> None:
    system = load_system(ROUTER)
    received: list[ModelRequest] = []
    controller = StepController(stepping=True)
    task = asyncio.create_task(
        run(system, REQUEST, controller=controller, llm_factory=seen_by_model(received))
    )
    gate = await controller.wait_paused()
    messages = [dict(m) for m in gate.payload["messages"]]
    messages[1]["content"] = "the API is down with an error"
    assert controller.edit({"messages": messages}) is None
    controller.resume()
    result = await task
    assert result.status == "completed"
    assert result.path == ["router", "technical"]  # the scripted router routed the edited message
    assert received[0].messages[1]["content"] == "the API is down with an error"
    request = of_kind(result.events, ev.ModelRequested)[0]
    assert request.messages[1]["content"] == "the API is down with an error"
    edit = next(e for e in of_kind(result.events, ev.OperatorActed) if e.action == "edit")
    assert edit.gate == "model_call" and edit.detail["changed"] == ["messages"]
    assert edit.detail["messages"] == [
        {
            "index": 1,
            "before": {"role": "user", "content": REQUEST},
            "after": {"role": "user", "content": "the API is down with an error"},
        }
    ]
    assert edit.seq < request.seq


async def test_edited_instructions_replace_the_system_prompt_of_this_activation_only() -> None:
    system = load_system(ROUTER)
    received: list[ModelRequest] = []
    controller = StepController(stepping=True)
    task = asyncio.create_task(
        run(system, REQUEST, controller=controller, llm_factory=seen_by_model(received))
    )
    await controller.wait_paused()
    assert controller.edit({"instructions": NEW_INSTRUCTIONS}) is None
    controller.resume()
    result = await task
    assert received[0].messages[0]["content"] == NEW_INSTRUCTIONS
    assert of_kind(result.events, ev.ModelRequested)[0].messages[0]["content"] == NEW_INSTRUCTIONS
    edit = next(e for e in of_kind(result.events, ev.OperatorActed) if e.action == "edit")
    assert edit.detail == {"step": 1, "changed": ["instructions"], "instructions": NEW_INSTRUCTIONS}
    # The agent's spec is unchanged: billing, and any later activation, run their own.
    assert received[1].messages[0]["content"].startswith("You answer billing questions.")


def test_an_edit_that_cannot_be_sent_is_refused_with_the_reason() -> None:
    agent = load_system(ROUTER).spec.agents["billing"]
    messages = [
        {"role": "system", "content": agent.instructions + "\n\nReply with JSON"},
        {"role": "user", "content": "hi"},
    ]
    held = held_call(agent, messages, [], {})
    check = check_call_edit(held)
    assert check({"model": "openai/gpt-4o"}) is not None
    assert "answers tool call" in (
        check({"messages": [*messages, {"role": "tool", "tool_call_id": "x"}]}) or ""
    )
    assert "comes first" in (check({"messages": messages[1:] + messages[:1]}) or "")
    both = [{"role": "system", "content": "other"}, messages[1]]
    assert "not both" in (check({"messages": both, "instructions": "new"}) or "")
    assert check({"instructions": "new"}) is None
    # What the run added to the instructions (a reply shape) stays after edited ones.
    assert edited_messages(held, {"instructions": "new"})[0]["content"] == "new\n\nReply with JSON"
    assert held["messages"][0]["content"].startswith(agent.instructions)  # the held copy is untouched
    assert call_changes(held, {"model": "x"}) == {"payload": {"model": "x"}}


async def test_a_recorded_request_names_the_key_variable_never_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = "sk-test-0123456789abcdef0123"
    monkeypatch.setenv("ROUTER_KEY_VARIABLE", key)
    system = router_with_settings()
    async with Store(tmp_path / "store.db") as store:
        result = await run_session(system, REQUEST, store=store)
        await store.flush()
        request = of_kind(await store.events(result.session_id), ev.ModelRequested)[0]
    assert request.settings["api_key_env"] == "ROUTER_KEY_VARIABLE"
    stored = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert key.encode() not in stored
