"""What an agent version is: the canonical form of a spec and its content address.

Version ids are computed here and nowhere else, by the store (recording and importing
versions), the runtime and the TUI alike.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from playground.spec.models import AgentSpec


def canonical_spec(agent: AgentSpec) -> str:
    """The canonical JSON of an agent spec: what its version id addresses.

    Keys keep their order (the spec's field order, then maps as written): the order of a
    schema's fields is part of the prompt and of the payloads, so a version rebuilt from
    this JSON must run exactly as the original did. Fields at their defaults are left out,
    so adding an optional field to the spec does not change every existing version id.
    """
    return canonical_json(agent.model_dump(mode="json", exclude_defaults=True))


def canonical_json(data: Any) -> str:
    """The one serialisation version ids are computed over (keys in order, compact)."""
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


def version_id_of_json(canonical: str) -> str:
    """12 hex digits of the SHA-256 of a canonical spec."""
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


def version_id(agent: AgentSpec) -> str:
    """Content address of an agent spec."""
    return version_id_of_json(canonical_spec(agent))
