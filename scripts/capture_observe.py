"""Capture what real agent frameworks export over OTLP, as test data for ``playground observe``.

Each capture runs a small multi-agent program written with a real framework against the
tests' fake OpenAI-compatible server (tests/fake_openai.py, on 127.0.0.1), with the
framework's OpenTelemetry instrumentation exporting OTLP/HTTP to a local capture server
(also on 127.0.0.1). Every request body the exporter posted is kept as it arrived, in
``tests/data/observe/<capture>/NNN.bin`` with ``manifest.json`` (content type and
encoding of each post, the framework versions). Nothing leaves the machine.

The frameworks are not dependencies of the playground: install them into a separate
virtual environment and run this script with its Python, from the repository root::

    python3 -m venv /tmp/obsvenv
    /tmp/obsvenv/bin/pip install openai-agents openinference-instrumentation-openai-agents \\
        opentelemetry-instrumentation-openai-agents-v2 'pydantic-ai-slim[openai]' langgraph \\
        langchain-openai openinference-instrumentation-langchain opentelemetry-sdk \\
        opentelemetry-exporter-otlp-proto-http aiohttp
    /tmp/obsvenv/bin/python scripts/capture_observe.py            # every capture
    /tmp/obsvenv/bin/python scripts/capture_observe.py langgraph-openinference-handoff

Each capture runs in its own process (a process has one global tracer provider). The
exporter posts in small batches (``max_export_batch_size=4``), so a trace arrives in
several bodies, children before their parents, as a busy application's would.
"""

# No ``from __future__ import annotations``: the frameworks read the programs' annotations.
import asyncio
import json
import subprocess
import sys
import threading
from collections.abc import Callable, Coroutine
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.metadata import version
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fake_openai import FakeOpenAI, FakeToolCall, Reply, Status  # noqa: E402

OUT = ROOT / "tests" / "data" / "observe"
REQUEST = "Where is my last invoice? I am customer C-1."
MODEL = "gpt-4o-mini"


# -- the capture server ----------------------------------------------------------------------


class _Capture(BaseHTTPRequestHandler):
    posts: list[dict[str, Any]] = []

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        self.posts.append(
            {
                "path": self.path,
                "content_type": self.headers.get("Content-Type", ""),
                "content_encoding": self.headers.get("Content-Encoding", ""),
                "body": body,
            }
        )
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _serve() -> tuple[ThreadingHTTPServer, str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Capture)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/v1/traces"


def _provider(endpoint: str, service: str, *, gzip: bool = False) -> Any:
    from opentelemetry.exporter.otlp.proto.http import Compression
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    exporter = OTLPSpanExporter(endpoint=endpoint, compression=Compression.Gzip if gzip else None)
    provider.add_span_processor(BatchSpanProcessor(exporter, max_export_batch_size=4))
    return provider


# -- the programs ----------------------------------------------------------------------------
# Each takes the fake server (replies queued by the caller) and the tracer provider.


def _handoff_replies(server: FakeOpenAI, *, fail: bool, transfer: str = "transfer_to_billing") -> None:
    server.push(Reply(tool_calls=[FakeToolCall(transfer, {})], usage=(120, 12)))
    if fail:
        server.push(Status(500, "the billing model is down"))
        return
    server.push(
        Reply(tool_calls=[FakeToolCall("lookup_invoice", {"customer_id": "C-1"})], usage=(150, 20)),
        Reply("Your last invoice is INV-42: $120.00, paid on 3 March.", usage=(190, 18)),
    )


async def openai_agents(server: FakeOpenAI, provider: Any, flavour: str, fail: bool) -> None:
    from openai import AsyncOpenAI

    from agents import (
        Agent,
        RunConfig,
        Runner,
        function_tool,
        set_default_openai_api,
        set_default_openai_client,
        set_trace_processors,
    )

    set_trace_processors([])  # no upload to the OpenAI platform's trace backend
    if flavour == "openinference":
        from openinference.instrumentation.openai_agents import OpenAIAgentsInstrumentor

        OpenAIAgentsInstrumentor().instrument(tracer_provider=provider)
    else:
        from opentelemetry.instrumentation.openai_agents import (
            OpenAIAgentsInstrumentor as GenAIInstrumentor,
        )

        GenAIInstrumentor().instrument(tracer_provider=provider, capture_message_content="span_only")
    set_default_openai_client(AsyncOpenAI(base_url=server.base_url, api_key="x", max_retries=0), False)
    set_default_openai_api("chat_completions")

    @function_tool
    def lookup_invoice(customer_id: str) -> str:
        """The customer's last invoice."""
        return f"INV-42 for {customer_id}: $120.00, paid on 3 March"

    billing = Agent(
        name="billing", instructions="Answer billing questions.", tools=[lookup_invoice], model=MODEL
    )
    general = Agent(name="general", instructions="Answer anything else.", model=MODEL)
    triage = Agent(name="triage", instructions="Route the request.", handoffs=[billing, general], model=MODEL)
    _handoff_replies(server, fail=fail)
    try:
        await Runner.run(triage, REQUEST, run_config=RunConfig(workflow_name="support-router"))
    except Exception as exc:
        print(f"  the run failed as scripted: {type(exc).__name__}")


async def pydantic_ai(server: FakeOpenAI, provider: Any, flavour: str, fail: bool) -> None:
    from openai import AsyncOpenAI
    from pydantic_ai import Agent, InstrumentationSettings, RunContext
    from pydantic_ai.models.openai import OpenAIChatModel
    from pydantic_ai.providers.openai import OpenAIProvider

    model = OpenAIChatModel(
        MODEL,
        provider=OpenAIProvider(
            openai_client=AsyncOpenAI(base_url=server.base_url, api_key="x", max_retries=0)
        ),
    )
    # What ``instrument=True`` turns on, with this process's tracer provider.
    Agent.instrument_all(InstrumentationSettings(tracer_provider=provider, include_content=True))
    billing = Agent(model, name="billing", instructions="Answer billing questions.")

    @billing.tool_plain
    def lookup_invoice(customer_id: str) -> str:
        """The customer's last invoice."""
        return f"INV-42 for {customer_id}: $120.00, paid on 3 March"

    triage = Agent(model, name="triage", instructions="Delegate billing questions.")

    @triage.tool
    async def ask_billing(ctx: RunContext[None], question: str) -> str:
        """Ask the billing agent."""
        result = await billing.run(question, usage=ctx.usage)
        return result.output

    server.push(Reply(tool_calls=[FakeToolCall("ask_billing", {"question": REQUEST})], usage=(100, 15)))
    if fail:
        server.push(Status(500, "the billing model is down"))
    else:
        server.push(
            Reply(tool_calls=[FakeToolCall("lookup_invoice", {"customer_id": "C-1"})], usage=(80, 10)),
            Reply("INV-42: $120.00, paid on 3 March.", usage=(110, 12)),
            Reply("Your last invoice is INV-42: $120.00, paid on 3 March.", usage=(140, 16)),
        )
    try:
        await triage.run(REQUEST)
    except Exception as exc:
        print(f"  the run failed as scripted: {type(exc).__name__}")


async def langgraph(server: FakeOpenAI, provider: Any, flavour: str, fail: bool) -> None:
    from typing import Annotated, TypedDict

    from langchain_core.messages import AnyMessage, HumanMessage
    from langchain_core.tools import tool
    from langchain_openai import ChatOpenAI
    from langgraph.graph import END, START, StateGraph
    from langgraph.graph.message import add_messages
    from langgraph.prebuilt import ToolNode
    from openinference.instrumentation.langchain import LangChainInstrumentor

    LangChainInstrumentor().instrument(tracer_provider=provider)

    @tool
    def lookup_invoice(customer_id: str) -> str:
        """The customer's last invoice."""
        return f"INV-42 for {customer_id}: $120.00, paid on 3 March"

    @tool
    def transfer_to_billing() -> str:
        """Hand the request to the billing agent."""
        return "transferred to billing"

    llm = ChatOpenAI(model=MODEL, base_url=server.base_url, api_key="x", max_retries=0)  # type: ignore[arg-type]

    # The functional form: annotations are evaluated here, not as strings.
    State = TypedDict("State", {"messages": Annotated[list[AnyMessage], add_messages]})  # noqa: UP013

    def triage(state: Any) -> Any:
        return {"messages": [llm.bind_tools([transfer_to_billing]).invoke(state["messages"])]}

    def billing(state: Any) -> Any:
        return {"messages": [llm.bind_tools([lookup_invoice]).invoke(state["messages"])]}

    def after_triage(state: Any) -> Any:
        return "billing" if getattr(state["messages"][-1], "tool_calls", None) else END

    def after_billing(state: Any) -> Any:
        return "tools" if getattr(state["messages"][-1], "tool_calls", None) else END

    graph = StateGraph(State)
    graph.add_node("triage", triage)
    graph.add_node("billing", billing)
    graph.add_node("tools", ToolNode([lookup_invoice]))
    graph.add_edge(START, "triage")
    graph.add_conditional_edges("triage", after_triage, ["billing", END])
    graph.add_conditional_edges("billing", after_billing, ["tools", END])
    graph.add_edge("tools", "billing")
    app = graph.compile(name="support-router")
    _handoff_replies(server, fail=fail)
    try:
        await app.ainvoke({"messages": [HumanMessage(REQUEST)]})
    except Exception as exc:
        print(f"  the run failed as scripted: {type(exc).__name__}")


Program = Callable[[FakeOpenAI, Any, str, bool], Coroutine[Any, Any, None]]

CAPTURES: dict[str, tuple[Program, str, bool, bool]] = {
    # name: (program, flavour, fail, gzip)
    "openai-agents-openinference-handoff": (openai_agents, "openinference", False, False),
    "openai-agents-openinference-error": (openai_agents, "openinference", True, False),
    "openai-agents-genai-handoff": (openai_agents, "genai", False, False),
    "openai-agents-genai-error": (openai_agents, "genai", True, False),
    "pydantic-ai-delegation": (pydantic_ai, "builtin", False, False),
    "pydantic-ai-error": (pydantic_ai, "builtin", True, False),
    "langgraph-openinference-handoff": (langgraph, "openinference", False, True),
    "langgraph-openinference-error": (langgraph, "openinference", True, True),
}

PACKAGES = {
    openai_agents: (
        "openai-agents",
        "openinference-instrumentation-openai-agents",
        "opentelemetry-instrumentation-openai-agents-v2",
    ),
    pydantic_ai: ("pydantic-ai-slim",),
    langgraph: ("langgraph", "langchain-openai", "openinference-instrumentation-langchain"),
}


async def _capture(name: str) -> None:
    program, flavour, fail, gzip = CAPTURES[name]
    capture, endpoint = _serve()
    provider = _provider(endpoint, f"capture-{name}", gzip=gzip)
    async with FakeOpenAI() as server:
        await program(server, provider, flavour, fail)
        await asyncio.to_thread(provider.force_flush)
    provider.shutdown()
    capture.shutdown()
    folder = OUT / name
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.bin"):
        old.unlink()
    posts = []
    for n, post in enumerate(_Capture.posts, 1):
        file = f"{n:03}.bin"
        (folder / file).write_bytes(post["body"])
        posts.append({"file": file, **{k: v for k, v in post.items() if k != "body"}})
    manifest = {
        "capture": name,
        "flavour": flavour,
        "scripted_failure": fail,
        "packages": {p: version(p) for p in PACKAGES[program]},
        "posts": posts,
    }
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    print(f"{name}: {len(posts)} posts")


def main(argv: list[str]) -> int:
    if argv[:1] == ["--one"]:
        asyncio.run(_capture(argv[1]))
        return 0
    names = argv or list(CAPTURES)
    unknown = [n for n in names if n not in CAPTURES]
    if unknown:
        print(f"unknown captures {unknown}; known: {', '.join(CAPTURES)}", file=sys.stderr)
        return 2
    failed = 0
    for name in names:
        proc = subprocess.run([sys.executable, __file__, "--one", name], cwd=ROOT, timeout=300)
        failed += proc.returncode != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
