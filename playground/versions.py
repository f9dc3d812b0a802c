"""Agent versions as an operator reads them: a diff of two specs, a spec back as YAML.

Pure functions over :class:`AgentSpec`; the store keeps the versions themselves.
"""

from __future__ import annotations

import difflib
import json
from typing import Any

import yaml

from playground.spec.code import describe_changes
from playground.spec.models import AgentSpec, HandoffSpec, ScriptStep

NO_DIFFERENCES = "no differences"


def diff_specs(a: AgentSpec, b: AgentSpec, *, a_label: str = "a", b_label: str = "b") -> str:
    """What changed from ``a`` to ``b``: instructions as a unified diff, then a line per field.

    Args:
        a_label: Names ``a`` in the diff header (a version id, say).
        b_label: Names ``b`` in the diff header.

    Returns:
        The diff, or ``"no differences"`` when the specs are equal.
    """
    if a.model_dump(mode="json") == b.model_dump(mode="json"):
        return NO_DIFFERENCES
    out: list[str] = []
    if a.instructions != b.instructions:
        out.append("instructions:")
        out.extend(
            difflib.unified_diff(
                a.instructions.splitlines(),
                b.instructions.splitlines(),
                fromfile=a_label,
                tofile=b_label,
                lineterm="",
            )
        )
    out.extend(_changed("name", a.name, b.name))
    out.extend(_changed("model", a.model, b.model))
    out.extend(_changed("fallbacks", _flow(a.fallbacks), _flow(b.fallbacks)))
    out.extend(_names("tools", a.tools, b.tools))
    out.extend(_handoffs(a.handoffs, b.handoffs))
    out.extend(_names("delegates", a.delegates, b.delegates))
    out.extend(_schema("input", _dump(a, "input"), _dump(b, "input")))
    out.extend(_schema("output", _dump(a, "output"), _dump(b, "output")))
    out.extend(_settings(a.model_settings, b.model_settings))
    out.extend(_changed("price", _price(a), _price(b)))
    out.extend(_script(a.script, b.script))
    out.extend(f"code: {line}" for line in describe_changes(a.code, b.code))
    for field in ("description", "review", "max_reviews", "latency_ms", "tokens_per_s"):
        out.extend(_changed(field, _flow(getattr(a, field)), _flow(getattr(b, field))))
    return "\n".join(out)


def spec_to_yaml(agent: AgentSpec) -> str:
    """One agent as its block in a system file (``name:`` and its fields), defaults left out.

    The text pastes under ``agents:`` and loads back to the same version id.
    """
    dumped = agent.model_dump(mode="json", exclude_defaults=True)
    dumped.pop("name", None)
    # The order of the example files: what runs it first, then what it does.
    first = ("model", "fallbacks", "description", "instructions")
    data = {"model": agent.model, **{k: dumped[k] for k in first if k in dumped}}
    data.update({k: v for k, v in dumped.items() if k not in first})
    for key in ("handoffs", "script"):
        if key in data:
            data[key] = [_Block(item) for item in data[key]]
    return yaml.dump(
        {agent.name: data},
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        width=100,
        default_flow_style=None,  # collections of scalars inline: tools: [a, b]
    )


class _Dumper(yaml.SafeDumper):
    """Block style for multi-line text (instructions), flow style for leaf lists and maps."""


class _Block(dict[str, Any]):
    """A map written in block style even when its values are all scalars (a script step)."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


def _represent_block(dumper: yaml.SafeDumper, value: _Block) -> yaml.MappingNode:
    return dumper.represent_mapping("tag:yaml.org,2002:map", value, flow_style=False)


_Dumper.add_representer(str, _represent_str)
_Dumper.add_representer(_Block, _represent_block)


def _flow(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return value if value else "''"
    return json.dumps(value, ensure_ascii=False)


def _changed(field: str, old: Any, new: Any) -> list[str]:
    return [f"{field}: {old} -> {new}"] if old != new else []


def _names(field: str, old: list[str], new: list[str]) -> list[str]:
    if old == new:
        return []
    added = [n for n in new if n not in old]
    removed = [n for n in old if n not in new]
    parts = [f"+{n}" for n in added] + [f"-{n}" for n in removed]
    if not parts:
        parts = [f"order {_flow(old)} -> {_flow(new)}"]
    return [f"{field}: {' '.join(parts)}"]


def _dump(agent: AgentSpec, field: str) -> dict[str, str] | None:
    value: dict[str, str] | None = agent.model_dump(mode="json", include={field})[field]
    return value


def _schema(field: str, old: dict[str, str] | None, new: dict[str, str] | None) -> list[str]:
    if old == new:
        return []
    if old is None or new is None:
        return [f"{field}: {_fields(old)} -> {_fields(new)}"]
    parts = [f"+{k}: {v}" for k, v in new.items() if k not in old]
    parts += [f"-{k}" for k in old if k not in new]
    parts += [f"{k}: {old[k]} -> {new[k]}" for k in old if k in new and old[k] != new[k]]
    if not parts:
        parts = [f"order {_fields(old)} -> {_fields(new)}"]
    return [f"{field}: {', '.join(parts)}"]


def _fields(schema: dict[str, str] | None) -> str:
    if schema is None:
        return "-"
    return "{" + ", ".join(f"{k}: {v}" for k, v in schema.items()) + "}"


def _handoffs(old: list[HandoffSpec], new: list[HandoffSpec]) -> list[str]:
    before = {h.to: h for h in old}
    after = {h.to: h for h in new}
    out = [f"handoffs: +{h.to} (context {_fields(_context(h))})" for h in new if h.to not in before]
    out += [f"handoffs: -{h.to}" for h in old if h.to not in after]
    for target, h in after.items():
        was = before.get(target)
        if was is None or was == h:
            continue
        parts = []
        if was.description != h.description:
            parts.append(f"description {_flow(was.description)} -> {_flow(h.description)}")
        parts.extend(_schema("context", _context(was), _context(h)))
        if was.history != h.history:
            parts.append(f"history {was.history} -> {h.history}")
        out.append(f"handoffs: {target}: {'; '.join(parts)}")
    if not out and [h.to for h in old] != [h.to for h in new]:
        out.append(f"handoffs: order {_flow([h.to for h in old])} -> {_flow([h.to for h in new])}")
    return out


def _context(handoff: HandoffSpec) -> dict[str, str] | None:
    value: dict[str, str] | None = handoff.model_dump(mode="json")["context"]
    return value


def _settings(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    if old == new:
        return []
    parts = [f"+{k}={_flow(v)}" for k, v in new.items() if k not in old]
    parts += [f"-{k}" for k in old if k not in new]
    parts += [f"{k} {_flow(old[k])} -> {_flow(new[k])}" for k in old if k in new and old[k] != new[k]]
    return [f"model_settings: {', '.join(parts)}"]


def _price(agent: AgentSpec) -> str:
    if agent.price is None:
        return "-"
    return f"input {agent.price.input:g} / output {agent.price.output:g} USD per 1M tokens"


def _script(old: list[ScriptStep], new: list[ScriptStep]) -> list[str]:
    if old == new:
        return []
    a = [_step(s) for s in old]
    b = [_step(s) for s in new]
    out: list[str] = []
    matcher = difflib.SequenceMatcher(a=a, b=b, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            continue
        if op == "replace" and i2 - i1 == j2 - j1:
            out += [f"script[{j1 + k}]: {a[i1 + k]} -> {b[j1 + k]}" for k in range(i2 - i1)]
            continue
        out += [f"script[{i}]: -{a[i]}" for i in range(i1, i2)]
        out += [f"script[{j}]: +{b[j]}" for j in range(j1, j2)]
    return out


def _step(step: ScriptStep) -> str:
    return json.dumps(step.model_dump(mode="json", exclude_defaults=True), ensure_ascii=False)
