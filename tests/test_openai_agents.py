"""OpenAI Agents SDK agents run by the playground's engine, through real litellm against the
fake OpenAI server (127.0.0.1): a triage agent handing off to a specialist with a function
tool (the SDK's default handoff) and to one through a typed handoff (``input_type``);
stepping, an edited handoff context, fork and replay on it; what is refused; and that
nothing imports the SDK unless an SDK agent is loaded."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("agents")

from playground.engine import Gate, Runtime, StepController
from playground.engine import events as ev
from playground.errors import SpecError
from playground.replay import fork_session, replay_session
from playground.service import run_session
from playground.spec import System
from playground.spec.identity import version_id
from playground.spec.load import load_system_ref
from playground.store import Store
from playground.versions import diff_specs
from tests.fake_openai import FakeOpenAI, FakeToolCall, Reply
from tests.helpers import ROOT, of_kind

# litellm's own streaming code reads pydantic attributes pydantic 2.11 deprecated (on tool calls).
pytestmark = pytest.mark.filterwarnings("ignore:Accessing the 'model_:DeprecationWarning")

SDK_SYSTEM = '''
import os

from pydantic import BaseModel

from agents import Agent, RunContextWrapper, function_tool, handoff
from playground.openai_agents import system_from_agent

LOOKUPS = []
ESCALATIONS = []


@function_tool
def lookup_invoice(customer_id: str) -> str:
    """Look up a customer's last invoice."""
    LOOKUPS.append(customer_id)
    if customer_id == "C-404":
        raise KeyError("no invoice for C-404")
    return f"INV-1042 for {customer_id}: 49.00 USD, charged twice"


class Escalation(BaseModel):
    reason: str
    priority: int


def on_escalation(context: RunContextWrapper, data: Escalation) -> None:
    ESCALATIONS.append(data)


billing = Agent(
    name="Billing Agent",
    handoff_description="invoices and charges",
    instructions="Look up the invoice, then answer.",
    tools=[lookup_invoice],
    model="gpt-4o-mini",
)
escalation = Agent(name="escalation", instructions="Calm the customer down.", model="gpt-4o-mini")
triage = Agent(
    name="triage",
    instructions=lambda context, agent: f"You are {agent.name}. Route every request.",
    handoffs=[billing, handoff(escalation, input_type=Escalation, on_handoff=on_escalation)],
    model="gpt-4o-mini",
)


def system():
    settings = {"api_base": os.environ["PLAYGROUND_TEST_API_BASE"], "api_key_env": "FAKE_KEY"}
    return system_from_agent(triage, name="sdk-support", settings=settings)
'''


@pytest.fixture
def sdk_file(tmp_path: Path, fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FAKE_KEY", "sk-fake-for-the-test-server")
    monkeypatch.setenv("PLAYGROUND_TEST_API_BASE", fake_openai.base_url)
    file = tmp_path / "sdk_system.py"
    file.write_text(SDK_SYSTEM, encoding="utf-8")
    return file


def load(file: Path) -> tuple[System, Any]:
    """The system, and the module that defined it (its LOOKUPS and ESCALATIONS)."""
    system = load_system_ref(f"{file}:system")
    module = next(
        m for m in list(sys.modules.values()) if getattr(m, "__file__", None) == str(file.resolve())
    )
    return system, module


def transfer(name: str, **arguments: Any) -> Reply:
    return Reply(tool_calls=[FakeToolCall(name, arguments)])


def call(name: str, **arguments: Any) -> Reply:
    return Reply(tool_calls=[FakeToolCall(name, arguments)])


async def held(controller: StepController, run: asyncio.Task[Any]) -> Gate:
    paused = asyncio.ensure_future(controller.wait_paused())
    await asyncio.wait([paused, run], return_when=asyncio.FIRST_COMPLETED)
    if not paused.done():
        paused.cancel()
        raise AssertionError(f"the run ended without stopping at a gate: {run.result().error}")
    return paused.result()


def test_the_sdk_agents_become_one_system(sdk_file: Path) -> None:
    system, _ = load(sdk_file)
    spec = system.spec
    assert (spec.name, spec.pattern, spec.entry) == ("sdk-support", "router", "triage")
    assert list(spec.agents) == ["triage", "billing_agent", "escalation"]  # named as the SDK's handoff tools
    triage = spec.agents["triage"]
    assert triage.instructions == "You are triage. Route every request."  # the function, called
    assert "instructions" in triage.code  # and its source is part of the version
    assert {a.model for a in spec.agents.values()} == {"openai/gpt-4o-mini"}
    default, typed = triage.handoffs
    assert (default.to, default.history, default.schema_.fields) == ("billing_agent", "full", ())
    assert (
        default.description
        == "Handoff to the Billing Agent agent to handle the request. invoices and charges"
    )
    assert typed.to == "escalation" and typed.checkpoint is not None
    assert set(typed.schema_.json_schema["properties"]) == {"reason", "priority"}
    assert spec.agents["billing_agent"].tools == ["lookup_invoice"]


async def test_a_default_handoff_and_a_function_tool_through_litellm(
    sdk_file: Path, fake_openai: FakeOpenAI
) -> None:
    system, module = load(sdk_file)
    fake_openai.push(
        transfer("transfer_to_billing_agent"),
        call("lookup_invoice", customer_id="C-404"),
        call("lookup_invoice", customer_id="C-1"),
        Reply("Your invoice INV-1042 was charged twice; a refund is on its way."),
    )
    result = await Runtime(system).run("I was charged twice")
    assert result.status == "completed", result.error
    assert result.path == ["triage", "billing_agent"]
    assert result.output == "Your invoice INV-1042 was charged twice; a refund is on its way."
    assert module.LOOKUPS == ["C-404", "C-1"]  # the SDK's tool object ran the function
    first, second, third, _ = fake_openai.received
    offered = {t["function"]["name"]: t["function"] for t in first.tools}
    assert set(offered) == {"transfer_to_billing_agent", "transfer_to_escalation"}
    # The typed handoff is offered with the SDK's own (strict) schema of input_type.
    parameters = offered["transfer_to_escalation"]["parameters"]
    assert parameters["required"] == ["reason", "priority"] and parameters["additionalProperties"] is False
    # The billing agent sees the conversation (the SDK's default) and the SDK's tool schema.
    assert "[user] I was charged twice" in second.messages[0]["content"]
    assert second.tools[0]["function"]["parameters"]["properties"]["customer_id"]["type"] == "string"
    # A tool that raises: the SDK's own error handling answers the model.
    error_message = third.messages[-1]["content"]
    assert error_message.startswith("An error occurred while running the tool") and "C-404" in error_message
    tool_results = [e.result for e in of_kind(result.events, ev.ToolReturned)]
    assert tool_results[1] == "INV-1042 for C-1: 49.00 USD, charged twice"


async def test_a_typed_handoff_runs_the_sdks_on_handoff_and_delivers_the_context(
    sdk_file: Path, fake_openai: FakeOpenAI
) -> None:
    system, module = load(sdk_file)
    fake_openai.push(
        transfer("transfer_to_escalation", reason="angry", priority="high"),  # refused: not an int
        transfer("transfer_to_escalation", reason="angry", priority=2),
        Reply("I am sorry; a manager will call you."),
    )
    result = await Runtime(system).run("This is the third time I write!")
    assert result.status == "completed", result.error
    assert result.path == ["triage", "escalation"]
    refused = of_kind(result.events, ev.ValidationFailed)
    assert len(refused) == 1 and "priority" in refused[0].errors
    assert [(e.reason, e.priority) for e in module.ESCALATIONS] == [("angry", 2)]
    started = [e for e in of_kind(result.events, ev.AgentStarted) if e.agent == "escalation"]
    assert started[0].context == {"reason": "angry", "priority": 2}
    assert [v.verdict for v in of_kind(result.events, ev.CheckpointReviewed)] == ["accept"]


async def test_stepping_and_an_edited_handoff_context(sdk_file: Path, fake_openai: FakeOpenAI) -> None:
    system, module = load(sdk_file)
    fake_openai.push(transfer("transfer_to_escalation", reason="angry", priority=2), Reply("calm now"))
    controller = StepController(stepping=True)
    task = asyncio.create_task(Runtime(system, controller=controller).run("third time!"))
    gate = await held(controller, task)
    assert gate.kind == "model_call" and gate.agent == "triage"
    assert fake_openai.count == 0  # held before the call
    controller.step()
    gate = await held(controller, task)
    assert gate.kind == "handoff" and gate.payload["context"] == {"reason": "angry", "priority": 2}
    assert controller.edit({"context": {"reason": "angry", "priority": "urgent"}}) is not None  # invalid
    assert controller.edit({"context": {"reason": "edited by the operator", "priority": 1}}) is None
    gate = await held(controller, task)
    assert gate.kind == "model_call" and gate.agent == "escalation"
    controller.resume()
    result = await task
    assert result.status == "completed", result.error
    delivered = of_kind(result.events, ev.HandoffDelivered)[0]
    assert delivered.edited and delivered.payload == {"reason": "edited by the operator", "priority": 1}
    assert '"edited by the operator"' in fake_openai.received[1].messages[1]["content"]
    # on_handoff runs at the handoff's checkpoint, before the gate: it saw what the model wrote.
    assert [(e.reason, e.priority) for e in module.ESCALATIONS] == [("angry", 2)]


async def test_fork_and_replay_an_sdk_session(
    sdk_file: Path, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    system, _ = load(sdk_file)
    fake_openai.push(transfer("transfer_to_escalation", reason="angry", priority=2), Reply("calm now"))
    async with Store(tmp_path / "s.db") as store:
        recorded = await run_session(system, "third time!", store=store)
        assert recorded.status == "completed", recorded.error
        assert fake_openai.count == 2
        replayed = await replay_session(store, recorded.session_id)
        assert replayed.result.status == "completed" and replayed.result.output == "calm now"
        assert replayed.replayed_calls == 2 and fake_openai.count == 2  # nothing called again
        step = of_kind(recorded.events, ev.HandoffDelivered)[0].step
        assert step is not None
        fake_openai.push(Reply("a forked answer"))
        forked = await fork_session(
            store, recorded.session_id, step, edit={"reason": "forked", "priority": 3}
        )
    assert forked.result.status == "completed", forked.result.error
    assert forked.result.output == "a forked answer"
    assert fake_openai.count == 3  # only the escalation agent's call after the fork was live
    assert of_kind(forked.result.events, ev.HandoffDelivered)[0].payload == {
        "reason": "forked",
        "priority": 3,
    }


def test_a_changed_sdk_tool_body_is_a_new_version(sdk_file: Path) -> None:
    before, _ = load(sdk_file)
    sdk_file.write_text(SDK_SYSTEM.replace("charged twice", "charged once"), encoding="utf-8")
    after, _ = load(sdk_file)
    b1, b2 = before.spec.agents["billing_agent"], after.spec.agents["billing_agent"]
    assert version_id(b1) != version_id(b2)
    assert version_id(before.spec.agents["escalation"]) == version_id(after.spec.agents["escalation"])
    assert "code: tool lookup_invoice: body changed" in diff_specs(b1, b2)


REFUSED = '''
from openai import AsyncOpenAI
from pydantic import BaseModel

from agents import (
    Agent, GuardrailFunctionOutput, ModelSettings, OpenAIChatCompletionsModel, WebSearchTool,
    function_tool, handoff, input_guardrail,
)
from agents.extensions import handoff_filters


@input_guardrail
def polite(context, agent, text):
    return GuardrailFunctionOutput(output_info=None, tripwire_triggered=False)


@function_tool(needs_approval=True)
def refund(amount: int) -> str:
    """Refund."""
    return "ok"


worker = Agent(name="worker", tools=[WebSearchTool(), refund], tool_use_behavior="stop_on_first_tool")
client = AsyncOpenAI(api_key="x", base_url="http://127.0.0.1:9/v1")
remote = Agent(name="remote", model=OpenAIChatCompletionsModel(model="x", openai_client=client))
entry = Agent(
    name="entry",
    input_guardrails=[polite],
    model_settings=ModelSettings(tool_choice="required", truncation="auto"),
    handoffs=[handoff(worker, input_filter=handoff_filters.remove_all_tools), remote],
)
'''


def test_what_cannot_run_as_the_sdk_would_is_refused_by_name(tmp_path: Path) -> None:
    file = tmp_path / "refused.py"
    file.write_text(REFUSED, encoding="utf-8")
    with pytest.raises(SpecError) as caught:
        load_system_ref(f"{file}:entry")
    message = str(caught.value)
    assert message.startswith(f"{file}: cannot run under the playground as the SDK would")
    for named in (
        "agents.entry.input_guardrails",
        "agents.entry.model_settings.truncation",
        "agents.entry.model_settings.tool_choice",
        "agents.entry.handoffs[0].input_filter: 'remove_all_tools'",
        "agents.worker.tool_use_behavior",
        "agents.worker.tools[0]: WebSearchTool",
        "agents.worker.tools[1] (refund): needs_approval",
        "agents.remote.model: a OpenAIChatCompletionsModel object",
    ):
        assert named in message, named
    assert "Traceback" not in message


def test_the_sdk_is_imported_only_when_an_sdk_agent_is_loaded() -> None:
    code = textwrap.dedent(
        """
        import asyncio, sys
        import playground
        from playground import Agent, define_system
        from playground.engine import Runtime
        from playground.spec.load import load_system_ref
        yaml = load_system_ref("agents/support_router.yaml")
        python = load_system_ref("agents/support_router.py:support_router")
        asyncio.run(Runtime(define_system("tiny", entry=Agent("r", handoffs=[Agent("g")]))).run("hi"))
        before = "agents" in sys.modules or "playground.openai_agents" in sys.modules
        load_system_ref("agents/support_router_sdk.py:offline")
        print(json.dumps([before, "agents" in sys.modules]))
        """
    ).replace("import asyncio, sys", "import asyncio, json, sys")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == [False, True]


async def test_the_sdk_example_runs_offline() -> None:
    system = load_system_ref(str(ROOT / "agents" / "support_router_sdk.py") + ":offline")
    assert {a.model for a in system.spec.agents.values()} == {"scripted"}
    billing = await Runtime(system).run("I was charged twice on my last invoice")
    assert billing.status == "completed" and billing.path == ["triage", "billing"]
    assert "INV-1042" in billing.output
    technical = await Runtime(system).run("The API is down with an error")
    assert technical.path == ["triage", "technical"]
    assert of_kind(technical.events, ev.HandoffDelivered)[0].payload == {
        "component": "api",
        "question": "The API is down with an error",
    }


SUPERVISOR = """
from agents import Agent, function_tool

from playground.openai_agents import system_from_agent

translator = Agent(name="translator", instructions="Translate to French.")
boss = Agent(
    name="boss",
    instructions="Translate with the tool, then answer.",
    tools=[
        translator.as_tool(tool_name="translate_to_french", tool_description="Translate a text to French")
    ],
)
SCRIPTS = {
    "boss": [{"tool": "translate_to_french", "args": {"input": "{input}"}}, {"reply": "boss: {tool_result}"}],
    "translate_to_french": [{"reply": "bonjour"}],
}


def offline():
    return system_from_agent(boss, model="scripted", scripts=SCRIPTS)
"""


async def test_agents_used_as_tools_are_delegates(tmp_path: Path) -> None:
    file = tmp_path / "supervisor.py"
    file.write_text(SUPERVISOR, encoding="utf-8")
    system = load_system_ref(f"{file}:offline")
    assert system.spec.pattern == "supervisor"
    boss, worker = system.spec.agents["boss"], system.spec.agents["translate_to_french"]
    assert boss.delegates == ["translate_to_french"] and worker.description == "Translate a text to French"
    assert worker.instructions == "Translate to French."
    assert worker.input is not None and worker.input.names == ("input",)  # the SDK's tool input
    result = await Runtime(system).run("hello")
    assert result.status == "completed", result.error
    assert result.path == ["boss", "translate_to_french"] and result.output == "boss: bonjour"
    called = of_kind(result.events, ev.ToolCalled)[0]
    assert (called.tool, called.args) == ("translate_to_french", {"input": "hello"})
