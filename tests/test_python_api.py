"""Systems defined in Python (playground.define) and loaded by reference (file.py:NAME,
package.module:NAME): the same System the YAML loader builds, every feature, clear errors,
and versions of code."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from playground import Agent, Handoff, define_system
from playground.engine import Gate, Runtime, StepController
from playground.engine import events as ev
from playground.errors import PlaygroundError, SpecError
from playground.service import run_session
from playground.spec import AgentSpec, System, load_system
from playground.spec.identity import canonical_spec, version_id
from playground.spec.load import load_system_ref
from playground.store import Store
from playground.versions import diff_specs
from tests.helpers import ROOT, of_kind, write_system

REQUESTS = [
    "I was charged twice on my last invoice",
    "The API is down and returns error 500",
    "help",
    "What are your opening hours on public holidays?",
]


def instant(system: System) -> dict[str, AgentSpec]:
    """The system's agents with the scripted model's demo latency off."""
    return {
        name: agent.model_copy(update={"latency_ms": 0, "tokens_per_s": 0})
        for name, agent in system.spec.agents.items()
    }


async def held(controller: StepController, run: asyncio.Task[Any]) -> Gate:
    """The gate the run is held at (the test fails, rather than hangs, if the run ends first)."""
    paused = asyncio.ensure_future(controller.wait_paused())
    await asyncio.wait([paused, run], return_when=asyncio.FIRST_COMPLETED)
    if not paused.done():
        paused.cancel()
        raise AssertionError(f"the run ended without stopping at a gate: {run.result().error}")
    return paused.result()


def write_py(tmp_path: Path, source: str, name: str = "system.py") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(source).lstrip(), encoding="utf-8")
    return path


# -- the same system, written in Python ------------------------------------------------------


async def test_the_python_example_is_the_yaml_example() -> None:
    py = load_system_ref(str(ROOT / "agents" / "support_router.py") + ":support_router")
    yaml = load_system(ROOT / "agents" / "support_router.yaml")
    assert type(py) is type(yaml)
    assert list(py.spec.agents) == list(yaml.spec.agents)
    assert (py.spec.pattern, py.spec.entry, py.spec.on_loop) == ("router", "router", "clarify")
    assert py.spec.limits == yaml.spec.limits
    assert set(py.tools) == {"lookup_invoice", "search_status_page"}
    # Agents without code and with the same schemas are the same version whichever way written.
    for name in ("general", "clarify"):
        assert version_id(py.spec.agents[name]) == version_id(yaml.spec.agents[name])
    for request in REQUESTS:
        a = await Runtime(py, agents=instant(py)).run(request)
        b = await Runtime(yaml, agents=instant(yaml)).run(request)
        assert (a.status, a.path, a.output) == (b.status, b.path, b.output), request
        assert [h.payload for h in of_kind(a.events, ev.HandoffDelivered)] == [
            h.payload for h in of_kind(b.events, ev.HandoffDelivered)
        ]


FEATURES_PY = '''
from pydantic import BaseModel, Field

from playground import Agent, Checkpoint, Handoff, Limits, define_system, tool

CALLS = []


def lookup(customer_id: str) -> str:
    """Look up a customer."""
    CALLS.append(customer_id)
    return f"customer {customer_id}"


@tool(name="slow_lookup", timeout_s=5)
async def slow(customer_id: str) -> str:
    """Look up slowly."""
    return f"slow {customer_id}"


class Ticket(BaseModel):
    customer_id: str = Field(pattern="^C-[0-9]+$", description="the customer")
    question: str


def no_cards(payload):
    return "no card numbers" if "4111" in str(payload) else None


clarify = Agent("clarify", "Ask.", script=[{"reply": "what do you mean?"}])
billing = Agent(
    "billing",
    "Answer billing questions.",
    model="scripted",
    fallbacks=["scripted/backup"],
    tools=[lookup, slow],
    input=Ticket,
    output={"answer": "str"},
    price={"input": 1.0, "output": 2.0},
    model_settings={"temperature": 0.2},
    script=[
        {"tool": "lookup", "args": {"customer_id": "{customer_id}"}},
        {"tool": "slow_lookup", "args": {"customer_id": "{customer_id}"}},
        {"reply": {"answer": "{tool_result}"}},
    ],
    max_reviews=1,
)
router = Agent(
    "router",
    "Route.",
    handoffs=[
        Handoff(
            billing, "billing", context=Ticket, history="last:1",
            checkpoint=Checkpoint(no_cards, max_rejections=0),
        ),
        Handoff(clarify, "unclear", context={"request": "str", "reason": "str"}),
    ],
    script=[
        {"match": "card", "handoff": "billing", "context": {"customer_id": "C-1", "question": "card 4111"}},
        {"match": "(?i)bill", "handoff": "billing", "context": {"customer_id": "C-7", "question": "{input}"}},
        {"handoff": "clarify", "context": {"request": "{input}", "reason": "unclear"}},
    ],
)
system = define_system(
    "features",
    entry=router,
    on_loop=clarify,
    limits=Limits(max_hops=4, max_turns=5),
    loops={"max_repeats": 3},
    scripted={"latency_ms": 0, "tokens_per_s": 0},
)
'''


async def test_every_feature_of_a_system_file_from_python(tmp_path: Path) -> None:
    system = load_system_ref(f"{write_py(tmp_path, FEATURES_PY)}:system")
    spec = system.spec
    billing = spec.agents["billing"]
    assert spec.limits.max_hops == 4 and spec.limits.max_turns == 5 and spec.loops.max_repeats == 3
    assert spec.on_loop == "clarify" and spec.pattern == "router"
    assert billing.fallbacks == ["scripted/backup"] and billing.model_settings == {"temperature": 0.2}
    assert billing.price is not None and billing.price.output == 2.0 and billing.max_reviews == 1
    assert billing.tools == ["lookup", "slow_lookup"] and system.tools["slow_lookup"].timeout_s == 5
    assert system.tools["slow_lookup"].is_async and not system.tools["lookup"].is_async
    assert spec.agents["router"].handoffs[0].history == "last:1"
    # A pydantic model is its JSON Schema, enforced in full (the pattern included).
    context = spec.agents["router"].handoffs[0].schema_
    assert context.json_schema["properties"]["customer_id"]["pattern"] == "^C-[0-9]+$"
    with pytest.raises(ValueError):
        context.validate({"customer_id": "not-an-id", "question": "q"})

    result = await Runtime(system).run("my bill please")
    assert result.status == "completed", result.error
    assert result.path == ["router", "billing"] and result.output == '{"answer":"slow C-7"}'
    called = [e.tool for e in of_kind(result.events, ev.ToolCalled)]
    assert called == ["lookup", "slow_lookup"]
    module = sys.modules[system.tools["lookup"].func.__module__]
    assert module.CALLS == ["C-7"]
    assert result.per_agent["billing"].cost_usd > 0  # the price override

    # The handoff's checkpoint (a Python function) rejects a payload with a card number.
    refused = await Runtime(system).run("card problem")
    assert refused.status == "failed"
    verdicts = of_kind(refused.events, ev.CheckpointReviewed)
    assert [v.verdict for v in verdicts] == ["limit"] and "no card numbers" in verdicts[0].feedback


PIPELINE_PY = """
from playground import Agent, Checkpoint, define_system

SEEN = []

def not_a_draft(value):
    SEEN.append(value)
    return "still a draft" if "draft" in str(value) else None

extract = Agent(
    "extract",
    output={"item": "str"},
    script=[{"match": "still a draft", "reply": {"item": "kettle"}}, {"reply": {"item": "draft"}}],
    checkpoint=Checkpoint(not_a_draft, max_rejections=1),
)
prices = Agent("prices", input={"item": "str"}, output={"low": "int"}, script=[{"reply": {"low": 1}}])
reviews = Agent("reviews", input={"item": "str"}, output={"stars": "int"}, script=[{"reply": {"stars": 4}}])
report = Agent(
    "report", input={"prices": "dict", "reviews": "dict"}, script=[{"reply": "{prices} {reviews}"}]
)
system = define_system("shop", pipeline=[extract, [prices, reviews], report])

worker = Agent("worker", "Do it.", script=[{"reply": "done: {task}"}])
boss = Agent("boss", delegates=[worker], review=True,
             script=[{"tool": "worker", "args": {"task": "{input}"}}, {"reply": "boss: {tool_result}"},
                     {"review": "accept"}])

def supervisor():
    return define_system("team", entry=boss)
"""


async def test_pipelines_groups_checkpoints_and_supervisors_from_python(tmp_path: Path) -> None:
    file = write_py(tmp_path, PIPELINE_PY)
    shop = load_system_ref(f"{file}:system")
    assert shop.spec.pattern == "pipeline" and shop.spec.pipeline == [
        "extract",
        ["prices", "reviews"],
        "report",
    ]
    result = await Runtime(shop).run("kettle")
    assert result.status == "completed", result.error
    assert result.output == '{"low": 1} {"stars": 4}'
    assert [v.verdict for v in of_kind(result.events, ev.CheckpointReviewed)] == ["reject", "accept"]

    team = load_system_ref(f"{file}:supervisor")  # a function returning a system
    assert team.spec.pattern == "supervisor" and team.spec.agents["boss"].review
    done = await Runtime(team).run("tea")
    assert done.status == "completed", done.error
    assert done.output == "boss: done: tea"


def test_a_problem_names_the_python_file_and_the_agent_line(tmp_path: Path) -> None:
    file = write_py(
        tmp_path,
        """
        from playground import Agent, define_system

        a = Agent("a", script=[{"reply": "x"}])
        b = Agent("b", script=[{"tool": "nowhere", "args": {}}])
        r = Agent("r", handoffs=[a, b], script=[{"handoff": "a", "context": {"question": "{input}"}}])
        system = define_system("broken", entry=r)
        """,
    )
    with pytest.raises(SpecError) as caught:
        load_system_ref(f"{file}:system")
    error = caught.value
    assert error.path.endswith("system.py") and error.line == 4
    assert "agents.b.script[0].tool" in str(error) and "'nowhere'" in error.problem


def test_two_agents_with_one_name_and_models_with_validators_are_refused(tmp_path: Path) -> None:
    a1, a2 = Agent("same"), Agent("same")
    with pytest.raises(SpecError, match="two different agents are named 'same'") as caught:
        define_system("x", entry=Agent("r", handoffs=[a1, a2]))
    assert caught.value.path.endswith("test_python_api.py")

    from pydantic import BaseModel, field_validator

    class Checked(BaseModel):
        x: str

        @field_validator("x")
        @classmethod
        def _upper(cls, value: str) -> str:
            return value.upper()

    with pytest.raises(SpecError, match="Checked has validators"):
        define_system("y", entry=Agent("r", handoffs=[Handoff(Agent("t"), context=Checked)]))


# -- loading by reference --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "name", "line", "problem"),
    [
        ("x = 1\ndef f(:\n", "system", 2, "not valid Python"),
        ("import os\n\nraise RuntimeError('boom')\n", "system", 3, "RuntimeError: boom"),
        ("import sys\nsys.exit(3)\n", "system", 2, "sys.exit(3)"),
        ("system_ = 1\n", "system", None, "did you mean 'system_'"),
        ("system = 42\n", "system", None, "is a int, not a system"),
        ("def system(x):\n    return x\n", "system", 1, "takes arguments (x)"),
        ("def system():\n    raise ValueError('no')\n", "system", 2, "ValueError: no"),
    ],
)
def test_a_broken_python_reference_is_one_clear_error(
    tmp_path: Path, source: str, name: str, line: int | None, problem: str
) -> None:
    file = tmp_path / "broken.py"
    file.write_text(source)
    with pytest.raises(SpecError) as caught:
        load_system_ref(f"{file}:{name}")
    assert caught.value.line == line, caught.value
    assert problem in str(caught.value)
    assert caught.value.path.endswith("broken.py")


def test_a_module_reference_and_an_agent_as_the_entry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "mysystems"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "support.py").write_text(
        "from playground import Agent\n"
        "general = Agent('general', script=[{'reply': 'hi {question}'}])\n"
        "router = Agent('router', handoffs=[general], script=[{'handoff': 'general'}])\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    system = load_system_ref("mysystems.support:router")
    assert system.spec.name == "support.router"  # an agent: the entry of the system it reaches
    assert system.spec.path == "mysystems.support:router"  # what loads it again
    assert list(system.spec.agents) == ["router", "general"]
    with pytest.raises(SpecError, match=r"no module named 'mysystems\.nothere'"):
        load_system_ref("mysystems.nothere:router")


def test_the_cli_runs_and_checks_python_references(tmp_path: Path) -> None:
    env = {"PLAYGROUND_DB": str(tmp_path / "s.db"), "PATH": "/usr/bin:/bin"}
    run = subprocess.run(
        [sys.executable, "-m", "playground.cli", "run", "agents/support_router.py:support_router", "--json",
         "--input", "I was charged twice on my last invoice"],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert '"path": ["router", "billing"]' in run.stdout.replace(",\n  ", ", ")
    broken = tmp_path / "broken.py"
    broken.write_text("from playground import Agent\n\nAgent(\n")
    check = subprocess.run(
        [sys.executable, "-m", "playground.cli", "check", f"{broken}:system"],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=60,
    )  # fmt: skip
    assert check.returncode == 2
    assert f"{broken}:3" in check.stdout + check.stderr and "Traceback" not in check.stderr


# -- versions of code ------------------------------------------------------------------------

VERSIONED = '''
from playground import Agent, Handoff, define_system


def lookup(customer_id: str) -> str:
    """Look up a customer."""
    return "BODY"


def prompt():
    return "You answer billing questions."


billing = Agent(
    "billing", prompt, tools=[lookup], input={"customer_id": "str"},
    script=[{"tool": "lookup", "args": {"customer_id": "{customer_id}"}}, {"reply": "{tool_result}"}],
)
general = Agent("general", "Answer.", script=[{"reply": "hi"}])
router = Agent("router", handoffs=[Handoff(billing, context={"customer_id": "str"}), general],
               script=[{"handoff": "billing", "context": {"customer_id": "C-1"}}])
system = define_system("versioned", entry=router)
'''


def load_versioned(tmp_path: Path, source: str = VERSIONED) -> System:
    file = write_py(tmp_path, source, "versioned.py")
    return load_system_ref(f"{file}:system")


def test_a_changed_tool_body_is_a_new_version_and_the_diff_names_it(tmp_path: Path) -> None:
    before = load_versioned(tmp_path)
    after = load_versioned(tmp_path, VERSIONED.replace('return "BODY"', 'return "NEW BODY"'))
    b1, b2 = before.spec.agents["billing"], after.spec.agents["billing"]
    assert version_id(b1) != version_id(b2)
    for name in ("router", "general"):  # agents that do not run it keep their version
        assert version_id(before.spec.agents[name]) == version_id(after.spec.agents[name])
    diff = diff_specs(b1, b2)
    assert "code: tool lookup: body changed" in diff
    assert "instructions" not in diff.split("code:")[0]
    # A new signature, and a changed instructions function, are named as such.
    resigned = load_versioned(
        tmp_path, VERSIONED.replace("customer_id: str) -> str", "customer_id: str, x: int = 0) -> str")
    )
    assert (
        "code: tool lookup: signature lookup(customer_id: str) -> str -> lookup(customer_id: str, x: int = 0)"
        in (diff_specs(b1, resigned.spec.agents["billing"]))
    )
    reprompted = load_versioned(
        tmp_path, VERSIONED.replace('    return "You answer', '    text = 1\n    return "You answer')
    )
    assert "code: instructions: body changed" in diff_specs(b1, reprompted.spec.agents["billing"])
    assert reprompted.spec.agents["billing"].instructions == "You answer billing questions."


async def test_a_version_whose_code_is_gone_is_refused(tmp_path: Path) -> None:
    async with Store(tmp_path / "s.db") as store:
        old = load_versioned(tmp_path)
        first = await run_session(old, "x", store=store)
        assert first.status == "completed" and first.output == "BODY"
        new = load_versioned(tmp_path, VERSIONED.replace('return "BODY"', 'return "NEW BODY"'))
        second = await run_session(new, "x", store=store)
        assert second.output == "NEW BODY"
        # The store still has the old version; pointing billing back at it cannot run it.
        await store.rollback("versioned", "billing", version_id(old.spec.agents["billing"]))
        with pytest.raises(PlaygroundError) as caught:
            await run_session(new, "x", store=store)
    message = str(caught.value)
    assert "runs code that is no longer what" in message and "tool lookup" in message
    assert "check out the commit" in message


def test_a_system_in_python_imports_neither_litellm_nor_the_sdk(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from playground.spec.load import load_system_ref\n"
        "load_system_ref('agents/support_router.py:support_router')\n"
        "print([m for m in ('agents', 'litellm', 'textual') if m in sys.modules])\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.stdout.strip() == "[]", proc.stderr


async def test_stepping_and_editing_a_handoff_of_a_python_system(tmp_path: Path) -> None:
    system = load_versioned(tmp_path)
    controller = StepController(breakpoints={"handoff:*"})
    task = asyncio.create_task(Runtime(system, controller=controller).run("x"))
    gate = await held(controller, task)
    assert gate.kind == "handoff" and gate.payload["context"] == {"customer_id": "C-1"}
    assert controller.edit({"context": {"customer_id": "C-9"}}) is None
    result = await task
    started = [e for e in of_kind(result.events, ev.AgentStarted) if e.agent == "billing"]
    assert started[0].context == {"customer_id": "C-9"}
    assert of_kind(result.events, ev.HandoffDelivered)[0].edited


def test_an_agent_written_either_way_is_one_version(tmp_path: Path) -> None:
    path = write_system(
        tmp_path, "name: twin\npattern: router\nentry: r\nagents:\n  r:\n    handoffs: [{to: g}]\n  g: {}\n"
    )
    yaml = load_system(path)
    g = Agent("g")
    py = define_system("twin", entry=Agent("r", handoffs=[g]))
    assert canonical_spec(yaml.spec.agents["r"]) == canonical_spec(py.spec.agents["r"])
    assert canonical_spec(yaml.spec.agents["g"]) == canonical_spec(py.spec.agents["g"])


GUARDED_PY = """
import re

from playground import Agent, Handoff, define_system


def redact(payload, history):
    return {k: re.sub(r"[0-9]{4}( ?[0-9]{4}){3}", "[card]", v) for k, v in payload.items()}


def no_shouting(output):
    return "do not shout" if output.isupper() else None


shipping = Agent(
    "shipping",
    input={"order": "str", "note": "str"},
    validate={"output": no_shouting},
    script=[{"reply": "LOUD"}, {"reply": "calm: {note}"}],
)
router = Agent(
    "router",
    handoffs=[
        Handoff(shipping, context={"order": "str", "note": "str"}, guard=redact, from_={"order": "request"})
    ],
    script=[{"handoff": "shipping", "context": {"order": "invented", "note": "card 4111 1111 1111 1111"}}],
)
system = define_system("guarded", entry=router)
"""


async def test_guards_validators_and_fields_from_the_request_from_python(tmp_path: Path) -> None:
    system = load_system_ref(f"{write_py(tmp_path, GUARDED_PY)}:system")
    handoff = system.spec.agents["router"].handoffs[0]
    assert handoff.guard is not None and handoff.guard in system.checks
    assert system.spec.agents["shipping"].validators is not None
    assert set(system.spec.agents["router"].code) == {f"check {handoff.guard}"}
    result = await Runtime(system).run('{"order": "O-7"}')
    assert result.status == "completed", result.error
    delivered = of_kind(result.events, ev.HandoffDelivered)[0]
    assert delivered.payload == {"order": "O-7", "note": "card [card]"}  # from the request, redacted
    assert [e.kind for e in result.events if e.kind in ("guard_rewrote", "validation_failed")] == [
        "guard_rewrote",
        "validation_failed",
    ]
    assert result.output == "calm: card [card]"


def test_the_cli_refuses_to_roll_back_to_code_that_is_gone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from playground.cli import main

    file = write_py(tmp_path, VERSIONED, "versioned.py")
    ref, db = f"{file}:system", ["--db", str(tmp_path / "s.db")]
    assert main(["run", ref, "--input", "x", "-q", *db]) == 0
    old = version_id(load_system_ref(ref).spec.agents["billing"])
    file.write_text(textwrap.dedent(VERSIONED).lstrip().replace('"BODY"', '"NEW BODY"'), encoding="utf-8")
    assert main(["run", ref, "--input", "x", "-q", *db]) == 0
    capsys.readouterr()
    assert main(["versions", "diff", ref, "--agent", "billing", old, *db]) == 0
    assert "code: tool lookup: body changed" in capsys.readouterr().out
    assert main(["rollback", ref, "--agent", "billing", "--to", old, *db]) == 2
    refused = capsys.readouterr().err
    assert f"billing cannot be rolled back to {old}" in refused and "runs code that is no longer" in refused
    # Nothing moved: the next run still runs the code in the file.
    assert main(["run", ref, "--input", "x", "--json", *db]) == 0
    assert '"output": "NEW BODY"' in capsys.readouterr().out


async def test_the_yaml_examples_scenarios_pass_on_the_python_example(tmp_path: Path) -> None:
    from playground.scenarios import Runner, load_scenarios

    text = (ROOT / "agents" / "support_router.scenarios.yaml").read_text(encoding="utf-8")
    lines = text.splitlines()
    assert lines[1] == "system: support_router.yaml"
    lines[1] = f"system: {ROOT / 'agents' / 'support_router.py'}:support_router"
    scenarios = tmp_path / "python.scenarios.yaml"
    scenarios.write_text("\n".join(lines) + "\n", encoding="utf-8")
    suite = load_scenarios(scenarios)
    assert suite.system.spec.path.endswith("support_router.py:support_router")
    results = await Runner().run_all([suite])
    assert len(results) >= 5
    assert [(r.name, r.failures) for r in results if not r.passed] == []
