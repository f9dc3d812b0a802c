"""The support router written with the OpenAI Agents SDK, run by the playground.

Needs the extra: ``pip install -c constraints.txt -e '.[openai-agents]'``.

Offline, with the scripted model (``offline`` returns the system with every agent on
``scripted`` and the scripts below):

    playground run agents/support_router_sdk.py:offline --input "I was charged twice on my last invoice"

Against a real provider, ``triage`` is the SDK's entry agent itself (its model names
become litellm model strings; set OPENAI_API_KEY):

    playground run agents/support_router_sdk.py:triage --input "The API returns error 500"

The SDK's own ``Runner.run(triage, ...)`` runs the same objects unchanged.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agents import Agent, RunContextWrapper, function_tool, handoff
from pydantic import BaseModel, Field

from playground import import_file

tools = import_file(Path(__file__).parent / "tools.py")
MODEL = "gpt-4o-mini"


@function_tool
def lookup_invoice(customer_id: str) -> str:
    """Look up a customer's most recent invoice by customer id."""
    return str(tools.lookup_invoice(customer_id))


@function_tool
def search_status_page(component: str) -> str:
    """Search the status page for incidents affecting a component."""
    return str(tools.search_status_page(component))


class TechnicalIssue(BaseModel):
    """What the technical agent needs to know."""

    component: str = Field(description="the part of the product that is failing")
    question: str


ESCALATIONS: list[TechnicalIssue] = []
"""Every technical handoff, as on_handoff saw it (the playground runs it at the handoff's checkpoint)."""


def on_technical(context: RunContextWrapper[Any], issue: TechnicalIssue) -> None:
    ESCALATIONS.append(issue)


billing = Agent(
    name="billing",
    handoff_description="invoices, charges, refunds, payments",
    instructions="You answer billing questions. Look up the customer's invoice first, then answer in"
    " two sentences. The customer id is C-1 unless the customer says otherwise.",
    tools=[lookup_invoice],
    model=MODEL,
)

technical = Agent(
    name="technical",
    handoff_description="errors, outages, bugs, anything not working",
    instructions="Check the status page for the component, then answer.",
    tools=[search_status_page],
    model=MODEL,
)

general = Agent(
    name="general",
    handoff_description="anything else",
    instructions="Answer briefly and kindly.",
    model=MODEL,
)

triage = Agent(
    name="triage",
    instructions="You are the front desk of a support team. Read the request and hand it to exactly"
    " one specialist. Never answer it yourself.",
    handoffs=[
        billing,  # the SDK's default handoff: the conversation goes along
        handoff(technical, input_type=TechnicalIssue, on_handoff=on_technical),  # a typed handoff
        general,
    ],
    model=MODEL,
)

SCRIPTS: dict[str, list[dict[str, Any]]] = {
    "triage": [
        {"match": "(?i)invoice|refund|charge|bill|payment", "handoff": "billing", "context": {}},
        {
            "match": "(?i)error|down|crash|bug|broken|not working|outage",
            "handoff": "technical",
            "context": {"component": "api", "question": "{input}"},
        },
        {"handoff": "general", "context": {}},
    ],
    "billing": [
        {"tool": "lookup_invoice", "args": {"customer_id": "C-1"}},
        {"reply": "I checked your account: {tool_result}. A refund for the duplicate charge is on its way."},
    ],
    "technical": [
        {"tool": "search_status_page", "args": {"component": "{component}"}},
        {"reply": "Status check for {component}: {tool_result} If it persists, send us the request id."},
    ],
    "general": [{"reply": "Thanks for asking. We will get back to you shortly."}],
}


def offline() -> Any:
    """The same agents on the scripted model: runs with no key and no network."""
    from playground.openai_agents import system_from_agent

    return system_from_agent(triage, name="support-router-sdk", model="scripted", scripts=SCRIPTS)
