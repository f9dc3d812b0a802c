"""API keys never reach the store, an export, the spans or the terminal (issue 16, item 3).

A key is given each way a user gives one: in a variable with a conventional name
(``OPENAI_API_KEY``), in a variable named by ``api_key_env`` whatever its name
(``LLM_CRED``), in a variable named by any other ``*_env`` setting; and written into
the system file in seven spellings, or pasted as a value. Keys in the environment
reach the run (the request quotes them, a tool and the model echo them) and are
scrubbed from everything written; keys in the file are refused at load, naming the
file and line and never quoting the key.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from playground.engine.events import ModelRequested
from playground.errors import SpecError
from playground.service import run_session
from playground.spec import load_system
from playground.store import Store
from playground.tracing import configure_tracing
from tests.fake_openai import FakeOpenAI, FakeToolCall, Reply
from tests.helpers import of_kind, write_system
from tests.test_tracing import collector

__all__ = ["collector"]  # the local OTLP receiver fixture, shared with test_tracing

KEYS = {
    "OPENAI_API_KEY": "sk-conventional-name-5f1e0c9a7b",
    "LLM_CRED": "llmcred-odd-name-8d2b6e4f1a",
    "MY_ODD_VAR": "odd-env-setting-3c7a9e2d5b",
}

TOOLS = """
import os


def leak(name: str) -> str:
    \"\"\"Echo an environment variable (a tool that should not, but does).\"\"\"
    return "the value is " + os.environ[name]
"""

SYSTEM = """
name: leaky
pattern: router
entry: a
tools:
  leak: tools.py:leak
agents:
  a:
    model: scripted
    model_settings: {api_key_env: LLM_CRED, token_env: MY_ODD_VAR}
    tools: [leak]
    handoffs: [{to: b, context: {question: str}}]
    script:
      - tool: leak
        args: {name: OPENAI_API_KEY}
      - tool: leak
        args: {name: LLM_CRED}
      - tool: leak
        args: {name: MY_ODD_VAR}
      - handoff: b
        context: {question: "{tool_result} / {input}"}
  b:
    input: {question: str}
    script:
      - reply: "b heard: {question}"
"""

REQUEST = "here are my keys: " + " ".join(KEYS.values())


@pytest.fixture
def keys(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    for name, value in KEYS.items():
        monkeypatch.setenv(name, value)
    yield KEYS


def leaks(blob: bytes) -> list[str]:
    """The names of the keys found in ``blob`` (as UTF-8 text or JSON-escaped)."""
    return [name for name, value in KEYS.items() if value.encode() in blob]


def store_bytes(db: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(db.parent.glob(db.name + "*")))


def otlp_bodies(posts: list[tuple[str, dict[str, str], bytes]]) -> bytes:
    return b"".join(body for _, _, body in posts)


async def test_keys_from_the_environment_are_scrubbed_from_store_export_and_spans(
    tmp_path: Path, keys: dict[str, str], collector: tuple[str, list[tuple[str, dict[str, str], bytes]]]
) -> None:
    endpoint, posts = collector
    (tmp_path / "tools.py").write_text(TOOLS, encoding="utf-8")
    system = load_system(write_system(tmp_path, SYSTEM))
    tracer = configure_tracing(otlp_endpoint=endpoint, capture_content=True)
    assert tracer is not None
    db = tmp_path / "s.db"
    async with Store(db) as store:
        result = await run_session(system, REQUEST, store=store, tracer=tracer)
        assert result.status == "completed", result.error
        # The run itself saw every key: the scrubbing below is not vacuous.
        assert all(value in json.dumps([e.model_dump() for e in result.events]) for value in keys.values())
        export = "\n".join(await store.export_session(result.session_id)).encode()
    assert await tracer.flush_async(timeout_s=10)
    await tracer.shutdown_async()

    assert leaks(store_bytes(db)) == []
    assert leaks(export) == [] and b"[redacted]" in export
    bodies = otlp_bodies(posts)
    assert bodies and leaks(bodies) == [] and b"[redacted]" in bodies


SPELLINGS = [
    "extra_headers: {X-Api-Key: <key>}",
    "extra_headers: {x-goog-api-key: <key>}",
    "extra_headers: {Ocp-Apim-Subscription-Key: <key>}",
    "API-KEY: <key>",
    "access_key: <key>",
    "private_key: <key>",
    'api_base: "https://user:<key>@llm.example/v1"',
    'api_base: "https://llm.example/v1?key=<key>"',
    'extra_headers: {Authorization: "Bearer <key>"}',
    "aws_secret_access_key: <key>",
    "clientSecret: <key>",
    "api_key_env: <key>",
]


@pytest.mark.parametrize("setting", SPELLINGS)
def test_a_key_written_into_a_system_file_is_refused_at_its_line(tmp_path: Path, setting: str) -> None:
    key = "sk-written-into-the-file-77aa"
    text = f"""
name: t
pattern: router
entry: a
agents:
  a:
    model: openai/gpt-4o-mini
    model_settings:
      temperature: 0
      {setting.replace("<key>", key)}
    handoffs: [{{to: b}}]
  b: {{}}
"""
    path = write_system(tmp_path, text)
    with pytest.raises(SpecError) as caught:
        load_system(path)
    error = caught.value
    lines = path.read_text(encoding="utf-8").splitlines()
    assert error.path == str(path) and error.line is not None
    assert lines[error.line - 1].strip() == setting.replace("<key>", key)
    assert key not in str(error)


def test_a_keys_value_pasted_anywhere_in_a_file_is_refused(tmp_path: Path, keys: dict[str, str]) -> None:
    (tmp_path / "tools.py").write_text(TOOLS, encoding="utf-8")
    text = SYSTEM.replace("model: scripted", f"model: scripted\n    instructions: use {keys['LLM_CRED']}")
    path = write_system(tmp_path, text)
    with pytest.raises(SpecError) as caught:
        load_system(path)
    line = caught.value.line
    assert line is not None and "LLM_CRED" in str(caught.value)
    assert keys["LLM_CRED"] in path.read_text(encoding="utf-8").splitlines()[line - 1]
    assert keys["LLM_CRED"] not in str(caught.value)


CLI = [sys.executable, "-m", "playground.cli"]

LITELLM_SYSTEM = """
name: leaky-provider
pattern: router
entry: a
tools:
  leak: tools.py:leak
agents:
  a:
    model: openai/x
    model_settings: {api_base: "BASE", api_key_env: LLM_CRED}
    tools: [leak]
    handoffs: [{to: b, context: {question: str}}]
  b:
    input: {question: str}
    script:
      - reply: "b heard: {question}"
"""


async def cli(*args: str, env: dict[str, str]) -> tuple[int, bytes]:
    proc = await asyncio.create_subprocess_exec(
        *CLI, *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await proc.communicate()
    assert b"Traceback" not in err, err.decode()
    return proc.returncode or 0, out + err


async def test_keys_never_reach_the_terminal_through_the_command_line(
    tmp_path: Path,
    keys: dict[str, str],
    fake_openai: FakeOpenAI,
    collector: tuple[str, list[tuple[str, dict[str, str], bytes]]],
) -> None:
    """Through a real provider call (the fake server), the key named by ``api_key_env``
    is sent in the Authorization header; the provider echoes it, and the terminal, the
    store, an export and the spans never show it."""
    endpoint, posts = collector
    (tmp_path / "tools.py").write_text(TOOLS, encoding="utf-8")
    path = write_system(tmp_path, LITELLM_SYSTEM.replace("BASE", fake_openai.base_url))
    key = keys["LLM_CRED"]
    fake_openai.push(
        Reply(f"echo {key}", tool_calls=[FakeToolCall("leak", {"name": "LLM_CRED"})]),
        Reply(tool_calls=[FakeToolCall("transfer_to_b", {"question": f"the key {key}"})]),
    )
    db = tmp_path / "s.db"
    env = {**os.environ, "PLAYGROUND_LOG_DIR": str(tmp_path / "logs")}
    code, terminal = await cli(
        "run",
        str(path),
        "--input",
        f"use {key}",
        "--db",
        str(db),
        "--otlp",
        endpoint,
        "--capture-content",
        env=env,
    )
    assert code == 0, terminal.decode()
    assert fake_openai.received[0].headers.get("Authorization") == f"Bearer {key}"
    code, listed = await cli("sessions", "--db", str(db), "--json", env=env)
    assert code == 0
    session_id = json.loads(listed)[0]["session_id"]
    code, shown = await cli("sessions", "show", session_id, "--db", str(db), env=env)
    assert code == 0
    code, as_json = await cli("sessions", "show", session_id, "--db", str(db), "--json", env=env)
    assert code == 0
    code, exported = await cli("export", session_id, "--db", str(db), env=env)
    assert code == 0
    for blob in (terminal, as_json, shown, listed, exported, store_bytes(db), otlp_bodies(posts)):
        assert leaks(blob) == []


DEFAULT_TOOLS = """
import os


def call_service(query: str, api_key: str = os.environ["MY_ODD_VAR"]) -> str:
    \"\"\"Ask the service (its key a default, read from a variable nothing declares secret).\"\"\"
    return "answered " + query
"""

DEFAULT_SYSTEM = """
name: tool-default
pattern: pipeline
pipeline: [a]
tools:
  call_service: tools.py:call_service
agents:
  a:
    tools: [call_service]
    script:
      - tool: call_service
        args: {query: "{input}"}
      - reply: "done: {tool_result}"
"""


async def test_a_key_a_tool_takes_as_a_default_is_not_recorded_with_the_tools_offered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``model_requested.tool_schemas`` records each tool's JSON Schema, defaults included: a
    credential-named parameter's default is recorded redacted (its variable's name, here, does
    not mark it as a secret, so the scrubber does not know its value)."""
    key = KEYS["MY_ODD_VAR"]
    monkeypatch.setenv("MY_ODD_VAR", key)
    (tmp_path / "tools.py").write_text(DEFAULT_TOOLS, encoding="utf-8")
    system = load_system(write_system(tmp_path, DEFAULT_SYSTEM))
    db = tmp_path / "s.db"
    async with Store(db) as store:
        result = await run_session(system, "hello", store=store)
        assert result.status == "completed", result.error
        await store.flush()
    [offered] = of_kind(result.events, ModelRequested)[0].tool_schemas
    assert offered["parameters"]["properties"]["api_key"]["default"] == "[redacted]"
    assert offered["parameters"]["properties"]["query"] == {"type": "string"}
    assert key.encode() not in store_bytes(db)
