"""The support router of support_router.yaml, written with the playground's Python API.

Runs offline with the scripted model:

    playground run agents/support_router.py:support_router --input "I was charged twice on my last invoice"

Give an agent any litellm model string (``model="openai/gpt-4o-mini"``) to run it for real.
The tools are the YAML system's own (agents/tools.py); a changed tool body is a new version
of the agents that may call it (``playground versions agents/support_router.py:support_router``).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field

from playground import Agent, Handoff, Limits, define_system, import_file

tools = import_file(Path(__file__).parent / "tools.py")
PRICE = {"input": 0.15, "output": 0.60}


class BillingQuestion(BaseModel):
    customer_id: str
    question: str


class TechnicalQuestion(BaseModel):
    component: str = Field(description="the part of the product that is failing")
    question: str


class Question(BaseModel):
    question: str


class Unclear(BaseModel):
    request: str
    reason: str


billing = Agent(
    "billing",
    "You answer billing questions. Look up the customer's invoice first, then\nanswer in two sentences.\n",
    description="Answers billing questions using the invoice system.",
    tools=[tools.lookup_invoice],
    input=BillingQuestion,
    price=PRICE,
    script=[
        {"tool": "lookup_invoice", "args": {"customer_id": "{customer_id}"}},
        {"reply": "I checked your account: {tool_result}. A refund for the duplicate charge is on its way."},
    ],
)

technical = Agent(
    "technical",
    "Check the status page for the component, then answer.",
    description="Diagnoses errors and outages.",
    tools=[tools.search_status_page],
    input=TechnicalQuestion,
    price=PRICE,
    script=[
        {"tool": "search_status_page", "args": {"component": "{component}"}},
        {"reply": "Status check for {component}: {tool_result} If it persists, send us the request id."},
    ],
)

general = Agent(
    "general",
    "Answer briefly and kindly.",
    description="Answers everything else.",
    input=Question,
    price=PRICE,
    script=[{"reply": "Thanks for asking. Here is what I can tell you about: {question}"}],
)

clarify = Agent(
    "clarify",
    "Ask one short question that would let us route the request.",
    description="Asks the customer what they need.",
    price=PRICE,
    script=[
        {
            "reply": "Could you tell me a little more?"
            " For example, is this about a bill, an error, or something else?"
        }
    ],
)

router = Agent(
    "router",
    "You are the front desk of a support team. Read the request and hand it\n"
    "to exactly one specialist. Never answer it yourself.\n",
    description="Reads the request and picks one specialist.",
    price=PRICE,
    handoffs=[
        # card numbers and e-mails never reach billing (a guard: the same function the YAML names)
        Handoff(
            billing, "invoices, charges, refunds, payments", context=BillingQuestion, guard=tools.redact_pii
        ),
        Handoff(technical, "errors, outages, bugs, anything not working", context=TechnicalQuestion),
        Handoff(
            general, "anything else that is clear enough to answer", context=Question, guard=tools.redact_pii
        ),
        Handoff(clarify, "the request is too vague to route", context=Unclear),
    ],
    script=[
        {
            "match": "(?i)invoice|refund|charge|bill|payment",
            "handoff": "billing",
            "context": {"customer_id": "C-1", "question": "{input}"},
        },
        {
            "match": "(?i)error|down|crash|bug|broken|not working|outage",
            "handoff": "technical",
            "context": {"component": "api", "question": "{input}"},
        },
        {
            "match": "^.{0,12}$",
            "handoff": "clarify",
            "context": {"request": "{input}", "reason": "too short to tell what is needed"},
        },
        {"handoff": "general", "context": {"question": "{input}"}},
    ],
)

support_router = define_system(
    "support-router-py",
    description="Routes each support request to billing, technical, general or clarification.",
    entry=router,
    agents=[router, billing, technical, general, clarify],
    limits=Limits(max_hops=6, max_turns=6, timeout_s=120),
    on_loop=clarify,
    scripted={"latency_ms": 150, "tokens_per_s": 60},
)
