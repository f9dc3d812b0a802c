"""The playground's overhead per hop on an OpenAI Agents SDK system, against the SDK's own
``Runner`` on the same fake model, in one process and one run.

An N-agent handoff chain of SDK agents (a0 -> a1 -> ... -> aN-1, the SDK's default
handoffs: the conversation goes along). One fake, instant model decides for both: an
agent with a next agent hands off to it, the last one replies. The SDK calls it through
its ``Model`` interface, the playground through its ``LLM`` interface (the agents mapped
by ``playground.openai_agents.system_from_agent``); neither touches a network.

Prints, as microseconds per hop (mean of ``--runs`` runs, best of five rounds): a run's
whole time over its hops, for a short and a long chain (the SDK re-reads the whole
conversation each turn, so its cost per hop grows with the run), and the marginal cost of
one more hop, (T(long) - T(short)) / extra hops, for

- the SDK's ``Runner.run`` (tracing off),
- the playground's engine running the same agents, nothing attached,
- the same, recording every event to SQLite (what ``playground run`` does).

Usage: python bench/bench_openai_agents.py [--short 5] [--long 20] [--runs 100]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import sys
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from agents import Agent, Handoff, ModelResponse, ModelSettings, Runner, Usage, set_tracing_disabled
from agents.models.interface import Model
from bench_engine import timed
from openai.types.responses import ResponseFunctionToolCall, ResponseOutputMessage, ResponseOutputText

from playground.engine import Runtime
from playground.llm.base import LLM, ModelRequest, OnDelta, ToolCall
from playground.llm.base import ModelResponse as PlaygroundResponse
from playground.openai_agents import system_from_agent
from playground.service import run_session
from playground.spec import AgentSpec
from playground.store import Store


def decide(agent: str, last: int) -> str | None:
    """The one fake model: the agent to hand off to next, or None to reply."""
    index = int(agent[1:])
    return f"transfer_to_a{index + 1}" if index < last else None


class SdkFake(Model):
    """The fake model behind the SDK's ``Model`` interface."""

    def __init__(self, agent: str, last: int) -> None:
        self.agent, self.last = agent, last

    async def get_response(self, *args: Any, **kwargs: Any) -> ModelResponse:
        target = decide(self.agent, self.last)
        if target is not None:
            item: Any = ResponseFunctionToolCall(
                arguments="{}", call_id=f"call_{self.agent}", name=target, type="function_call"
            )
        else:
            text = ResponseOutputText(annotations=[], text="done", type="output_text")
            item = ResponseOutputMessage(
                id="msg", content=[text], role="assistant", status="completed", type="message"
            )
        return ModelResponse(output=[item], usage=Usage(), response_id=None)

    def stream_response(self, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        raise NotImplementedError


class PlaygroundFake:
    """The same fake model behind the playground's ``LLM`` interface."""

    def __init__(self, agent: str, last: int) -> None:
        self.agent, self.last = agent, last

    async def complete(self, request: ModelRequest, on_delta: OnDelta | None = None) -> PlaygroundResponse:
        target = decide(self.agent, self.last)
        if target is not None:
            return PlaygroundResponse(tool_calls=[ToolCall(f"call_{self.agent}", target, "{}")])
        return PlaygroundResponse(text="done")


def chain(n: int) -> Agent[Any]:
    """a0 -> ... -> a(n-1), each handing off to the next (built last to first)."""
    agents: list[Agent[Any] | Handoff[Any, Any]] = []
    for i in reversed(range(n)):
        agents.insert(
            0,
            Agent(
                name=f"a{i}",
                instructions=f"You are step {i}.",
                handoffs=agents[:1],
                model=SdkFake(f"a{i}", n - 1),
                model_settings=ModelSettings(),
            ),
        )
    entry = agents[0]
    assert isinstance(entry, Agent)
    return entry


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--short", type=int, default=5)
    parser.add_argument("--long", type=int, default=20)
    parser.add_argument("--runs", type=int, default=100)
    args = parser.parse_args()
    short, long, runs = args.short, args.long, args.runs
    set_tracing_disabled(True)
    entries = {n: chain(n) for n in (short, long)}
    # The SDK agents carry Model objects (the fake); the playground runs them on a model
    # name of its own and gets the same fake from its factory.
    systems = {
        n: system_from_agent(entry, name=f"sdk-chain-{n}", model="bench/fake", limits={"max_hops": n + 1})
        for n, entry in entries.items()
    }
    lasts = {n: n - 1 for n in entries}

    def factory_for(n: int) -> Callable[[AgentSpec, str], LLM]:
        def factory(agent: AgentSpec, model: str) -> LLM:
            return PlaygroundFake(agent.name, lasts[n])

        return factory

    factories = {n: factory_for(n) for n in entries}

    async def sdk(n: int) -> None:
        result = await Runner.run(entries[n], "hello", max_turns=n + 2)
        assert result.final_output == "done"

    async def engine(n: int) -> None:
        result = await Runtime(systems[n], llm_factory=factories[n]).run("hello")
        assert result.status == "completed" and result.output == "done", result.error

    store = Store(Path(tempfile.mkdtemp()) / "bench.db")
    await store.open()

    async def recorded(n: int) -> None:
        result = await run_session(systems[n], "hello", store=store, llm_factory=factories[n])
        assert result.status == "completed", result.error

    configs: list[tuple[str, Callable[[int], Awaitable[None]], Callable[[], Awaitable[None]] | None]] = [
        ("OpenAI Agents SDK Runner.run", sdk, None),
        ("playground engine, nothing attached", engine, None),
        ("playground engine, recording to SQLite", recorded, store.flush),
    ]
    rows = []
    for label, fn, settle in configs:
        t_short = await timed(functools.partial(fn, short), runs, settle)
        t_long = await timed(functools.partial(fn, long), runs, settle)
        rows.append((label, t_short / (short - 1), t_long / (long - 1), (t_long - t_short) / (long - short)))
    await store.close()
    print(
        f"µs per agent hop, the same SDK agents on the same instant fake model (mean of {runs} runs,"
        " best of 5; a run's whole time over its hops, and the marginal cost of one more hop)"
    )
    print(f"{'':42} {f'{short} agents':>10} {f'{long} agents':>10} {'marginal':>10}")
    for label, per_short, per_long, marginal in rows:
        print(f"{label:42} {per_short:10.1f} {per_long:10.1f} {marginal:10.1f}")
    base = rows[0]
    for label, per_short, per_long, _ in rows[1:]:
        print(f"{label}: {base[1] / per_short:.0f}x / {base[2] / per_long:.0f}x less than the SDK per hop")


if __name__ == "__main__":
    asyncio.run(main())
