"""Tools of the bundled example systems, loaded by path from the YAML files.

A tool is a plain function, sync or async. Its type hints become the argument
schema offered to the model; its docstring becomes the description.
"""

from __future__ import annotations

import re
from typing import Any

_INVOICES = {
    "C-1": {"invoice": "INV-1042", "amount_usd": 49.0, "status": "charged twice", "date": "2026-11-02"},
    "C-9": {"invoice": "INV-0977", "amount_usd": 19.0, "status": "refund pending", "date": "2026-10-14"},
}


def lookup_invoice(customer_id: str) -> str:
    """Look up a customer's most recent invoice by customer id."""
    invoice = _INVOICES.get(customer_id)
    if invoice is None:
        raise KeyError(f"no invoice for customer {customer_id!r}")
    return (
        f"invoice {invoice['invoice']} of {invoice['date']}, {invoice['amount_usd']:.2f} USD,"
        f" {invoice['status']}"
    )


def search_status_page(component: str) -> str:
    """Search the status page for incidents affecting a component."""
    return f"No open incidents for {component}; last incident resolved 2026-11-20."


async def web_search(query: str) -> list[str]:
    """Search the (offline, canned) web for a query; returns result snippets."""
    return [
        f"{query}: multi-agent systems split work across specialised agents.",
        f"{query}: structured handoffs pass typed context instead of raw history.",
    ]


def refund_payment(customer_id: str, amount_usd: float) -> str:
    """Refund a payment. Only a human-approved agent may call this."""
    return f"refunded {amount_usd} USD to {customer_id}"


def word_count(text: str) -> int:
    """Count the words of a text."""
    return len(text.split())


_PRICES = {"kettle": (24.0, 59.0), "toaster": (19.0, 45.0), "blender": (35.0, 120.0)}


def price_lookup(product: str) -> dict[str, float]:
    """Look up the lowest and highest shop price of a product, in USD.

    A plain (synchronous) function: the playground runs it in a thread of its own, so it
    never holds up the agents running beside it.
    """
    low, high = _PRICES.get(product.lower(), (10.0, 99.0))
    return {"low": low, "high": high}


async def review_search(product: str) -> list[str]:
    """Find (canned, offline) customer review snippets for a product."""
    return [f"{product}: fast and quiet", f"{product}: the lid feels flimsy"]


_RATES = {"EUR": 1.08, "GBP": 1.27, "USD": 1.0}


def convert_to_usd(amount: float, currency: str) -> float:
    """Convert an amount in a currency to US dollars."""
    return round(amount * _RATES[currency.upper()], 2)


_CARD = re.compile(r"\b(?:\d[ -]?){13,19}\b")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+")


def _redacted(text: str) -> str:
    return _EMAIL.sub("[email]", _CARD.sub("[card]", text))


def redact_pii(payload: dict[str, Any], history: list[dict[str, Any]]) -> Any:
    """A handoff guard: card numbers and e-mail addresses never leave the router.

    Returns None (let the handoff through unchanged) when there is nothing to redact,
    else the payload and the history with each card number and address replaced.
    """
    clean = {k: _redacted(v) if isinstance(v, str) else v for k, v in payload.items()}
    carried = [
        {**m, "content": _redacted(m["content"])} if isinstance(m.get("content"), str) else m for m in history
    ]
    if clean == payload and carried == history:
        return None
    return clean, carried
