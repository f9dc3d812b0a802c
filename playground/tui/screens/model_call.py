"""What the model saw: one model call's full request and response.

Opened with ``i`` from the run screen on the selected model call (or the one the run is
held before), live or in a stored session: the settings, the system prompt, every
message, the tools offered with their JSON Schemas, and the response with its usage and
cost. ``[`` and ``]`` go to the session's previous and next call. At a held call, ``e``
edits its messages or the agent's instructions for this call; the screen closes with the
edit, and the run screen delivers it.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from rich.highlighter import JSONHighlighter
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Header, Static

from playground.engine import events as ev
from playground.engine.controller import Gate
from playground.errors import PlaygroundError
from playground.tui.calls import ModelCall, call_of_events, call_of_gate, model_call_seqs, nearest_call
from playground.tui.screens.call_edit import CallEdit, CallEditScreen
from playground.tui.state import possessive
from playground.tui.widgets.folding_footer import FoldingFooter

EventsLoader = Callable[[], Awaitable[Sequence[ev.Event]]]
"""Reads the session's events (the store's, flushed first, for a live run)."""

ROLE_STYLES = {
    "system": "bold magenta",
    "user": "bold cyan",
    "assistant": "bold green",
    "tool": "bold yellow",
}

_json = JSONHighlighter()


INLINE = 72
"""JSON objects and lists shorter than this stay on one line."""


def compact_json(value: Any, indent: str = "") -> str:
    """``value`` as JSON, one line per member only where one line would be too long."""
    flat = json.dumps(value, ensure_ascii=False, default=str)
    if len(flat) + len(indent) <= INLINE or not isinstance(value, dict | list) or not value:
        return flat
    inner = indent + "  "
    if isinstance(value, dict):
        members = [
            f"{inner}{json.dumps(str(k), ensure_ascii=False)}: {compact_json(v, inner)}"
            for k, v in value.items()
        ]
        return "{\n" + ",\n".join(members) + f"\n{indent}}}"
    items = [f"{inner}{compact_json(v, inner)}" for v in value]
    return "[\n" + ",\n".join(items) + f"\n{indent}]"


def json_text(value: Any) -> Text:
    """``value`` as highlighted JSON (a string that holds JSON is shown as that JSON)."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return Text(value)
    return _json(Text(compact_json(value)))


def settings_text(call: ModelCall) -> Text:
    text = Text()
    text.append("model ", "dim")
    text.append(call.model, "bold")
    if call.attempt > 1:
        text.append(f"  attempt {call.attempt}", "yellow")
    if call.settings is None:
        text.append("\nsettings not recorded in this session (recorded before they were)", "dim italic")
    elif not call.settings:
        text.append("\nno settings: the provider's defaults", "dim")
    else:
        for name, value in call.settings.items():
            text.append(f"\n{name}: ", "bold")
            text.append_text(json_text(value))
    for note in call.notes:
        text.append(f"\n{note}", "italic")
    return text


def system_text(call: ModelCall) -> Text:
    prompt = call.system_prompt.rstrip()
    return Text(prompt) if prompt else Text("no system prompt", "dim italic")


def message_text(index: int, message: dict[str, Any]) -> Text:
    role = str(message.get("role", "?"))
    text = Text()
    text.append(f"#{index} {role}", ROLE_STYLES.get(role, "bold"))
    if message.get("tool_call_id"):
        text.append(f"  answers {message['tool_call_id']}", "dim")
    content = message.get("content")
    if content:
        text.append("\n")
        text.append(str(content))
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        text.append(f"\n→ {function.get('name', '?')}", "bold")
        text.append(f"  {call.get('id', '')}\n", "dim")
        text.append_text(json_text(function.get("arguments") or "{}"))
    if not content and not message.get("tool_calls"):
        text.append("\n(empty)", "dim italic")
    return text


def messages_text(call: ModelCall) -> Text:
    first = 1 if call.system_prompt else 0
    text = Text()
    for index, message in enumerate(call.conversation, start=first):
        if text:
            text.append("\n\n")
        text.append_text(message_text(index, message))
    return text or Text("no messages", "dim italic")


def tools_text(call: ModelCall) -> Text:
    if call.tools is None:
        text = Text("schemas not recorded in this session; offered: ", "dim italic")
        text.append(", ".join(call.tool_names) or "none")
        return text
    if not call.tools:
        return Text("no tools offered: the model can only reply", "dim")
    text = Text()
    for tool in call.tools:
        if text:
            text.append("\n\n")
        text.append(str(tool.get("name")), "bold")
        if tool.get("description"):
            text.append(f"  {tool['description']}", "italic")
        text.append("\n")
        text.append_text(json_text(tool.get("parameters") or {}))
    return text


def response_text(call: ModelCall) -> Text:
    text = Text()
    if call.status == "held":
        text.append("not sent yet: the run is held before this call", "bold yellow")
        text.append(
            "\ne edits its messages or the agent's instructions · esc back (s steps, c continues)", "dim"
        )
        return text
    if call.failure is not None:
        failure = call.failure
        text.append(f"✘ {failure.error_type}: ", "bold red")
        text.append(failure.message)
        text.append(f"\nafter {failure.latency_ms:.0f} ms", "dim")
        text.append(" (retryable)" if failure.retryable else "", "dim")
        return text
    response = call.response
    if response is None:
        return Text(
            "no answer recorded (the call is in flight, or the session ended during it)", "dim italic"
        )
    if response.text:
        text.append(response.text)
    for tool_call in response.tool_calls:
        if text:
            text.append("\n")
        text.append(f"→ {tool_call.get('name', '?')}", "bold")
        text.append(f"  {tool_call.get('id', '')}\n", "dim")
        text.append_text(json_text(tool_call.get("arguments") or "{}"))
    if not text:
        text.append("(an empty reply)", "dim italic")
    text.append("\n\n")
    text.append("usage ", "dim")
    text.append(f"{response.input_tokens} in / {response.output_tokens} out tokens", "bold")
    text.append(f" · ${response.cost_usd:.6f}")
    text.append(f" · {response.latency_ms:.0f} ms")
    if response.first_token_ms is not None:
        text.append(f" (first token {response.first_token_ms:.0f} ms)", "dim")
    if response.model and response.model != call.model:
        text.append(f"\nanswered by {response.model}", "dim")
    return text


def edit_text(edit: dict[str, Any]) -> Text:
    """What an operator changed at the call's gate."""
    changed = edit.get("changed") or []
    text = Text("✎ edited by the operator before it was sent: ", "bold yellow")
    text.append(", ".join(changed) or "nothing")
    for change in edit.get("messages") or []:
        before, after = change.get("before"), change.get("after")
        what = "added" if before is None else "removed" if after is None else "changed"
        text.append(f"\n  message #{change.get('index')} {what}", "yellow")
    return text


class ModelCallScreen(Screen[CallEdit | None]):
    """One model call, request and response. Returns an edit of a held call, or None.

    Args:
        held: The gate of the call the run is held before (shows it, and lets ``e`` edit it).
        load: Reads the session's events, to show a past call.
        seq: The timeline row (an event's ``seq``) to show the call of: the call itself, or
            the last call (of ``agent``) before it; None: the session's last call.
        agent: The agent of that row.
    """

    CSS_PATH = "model_call.tcss"
    BINDINGS = [
        Binding(
            "e", "edit", "Edit call", id="call.edit", tooltip="Edit the held call's messages or instructions"
        ),
        Binding(
            "left_square_bracket", "previous", "Prev call", id="call.previous", tooltip="The call before"
        ),
        Binding("right_square_bracket", "next", "Next call", id="call.next", tooltip="The call after"),
        Binding("escape,i", "close", "Back", id="call.close", tooltip="Back to the run"),
    ]

    def __init__(
        self,
        *,
        held: Gate | None = None,
        load: EventsLoader | None = None,
        seq: int | None = None,
        agent: str | None = None,
    ) -> None:
        super().__init__()
        self.held = held
        self.load = load
        self.seq = seq
        self.agent = agent
        self.call: ModelCall | None = call_of_gate(held) if held is not None else None
        """The call shown."""
        self.seqs: list[int] = []
        """Every call of the session, by the ``seq`` of its request (once loaded)."""
        self._events: Sequence[ev.Event] = ()

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="call-summary")
        with VerticalScroll(id="call-body"):
            yield Static(id="call-edit-note")
            yield Static(id="call-settings", classes="call-section")
            yield Static(id="call-system", classes="call-section")
            yield Static(id="call-messages", classes="call-section")
            yield Static(id="call-response", classes="call-section")
            yield Static(id="call-tools", classes="call-section")
        yield FoldingFooter()

    def on_mount(self) -> None:
        self.query_one("#call-body").focus()
        if self.call is not None:
            self.show(self.call)
        elif self.load is not None:
            self.query_one("#call-summary", Static).update(Text("reading the session…", "dim"))
            self.read_events()

    @work(exclusive=True, exit_on_error=False, group="model-call")
    async def read_events(self) -> None:
        assert self.load is not None
        try:
            self._events = await self.load()
        except PlaygroundError as exc:
            self.notify(str(exc), title="cannot read the session", severity="error", timeout=10)
            return
        self.seqs = model_call_seqs(self._events)
        self._show_seq(nearest_call(self._events, self.seq, self.agent))

    def _show_seq(self, seq: int | None) -> None:
        call = call_of_events(self._events, seq) if seq is not None else None
        if call is None:
            self.query_one("#call-summary", Static).update(Text("no model call recorded here", "dim"))
            return
        self.seq = seq
        self.show(call)

    def show(self, call: ModelCall) -> None:
        """Draw ``call``."""
        self.call = call
        self.title = f"What the model saw · {possessive(call.agent)} call, step {call.step}"
        summary = Text()
        summary.append(f" {call.status.upper()} ", _status_style(call.status))
        summary.append(f" {call.agent} · step {call.step} · {call.model}", "bold")
        tools = len(call.tool_names)
        count = len(call.conversation)  # as the messages box counts them, after the system prompt
        messages = f"{count} message{'' if count == 1 else 's'}"
        if call.system_prompt:
            messages = f"system prompt + {messages}"
        summary.append(f" · {messages} · {tools} tool{'' if tools == 1 else 's'}", "dim")
        if self.seqs and call.seq in self.seqs:
            summary.append(f" · call {self.seqs.index(call.seq) + 1} of {len(self.seqs)}", "dim")
        self.query_one("#call-summary", Static).update(summary)
        note = self.query_one("#call-edit-note", Static)
        note.display = call.edit is not None
        if call.edit is not None:
            note.update(edit_text(call.edit))
        sections = (
            ("#call-settings", "settings", settings_text(call)),
            ("#call-system", "system prompt", system_text(call)),
            ("#call-messages", f"messages ({len(call.conversation)})", messages_text(call)),
            ("#call-response", "response", response_text(call)),
            ("#call-tools", f"tools offered ({len(call.tool_names)})", tools_text(call)),
        )
        for selector, title, content in sections:
            section = self.query_one(selector, Static)
            section.border_title = title
            section.update(content)
        self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "edit":
            return self.held is not None and self.held.payload.get("instructions") is not None
        if action in ("previous", "next"):
            return self.held is None and len(self.seqs) > 1
        return True

    def action_previous(self) -> None:
        self._move(-1)

    def action_next(self) -> None:
        self._move(1)

    def _move(self, by: int) -> None:
        if self.seq not in self.seqs:
            return
        index = self.seqs.index(self.seq) + by
        if 0 <= index < len(self.seqs):
            self._show_seq(self.seqs[index])
            self.query_one("#call-body", VerticalScroll).scroll_home(animate=False)

    def action_edit(self) -> None:
        held = self.held
        if held is None or held.payload.get("instructions") is None:
            self.notify("Only a call the run is held before can be edited.", severity="warning")
            return

        def edited(edit: CallEdit | None) -> None:
            if edit is not None:
                self.dismiss(edit)

        self.app.push_screen(CallEditScreen(held), edited)

    def action_close(self) -> None:
        self.dismiss(None)


def _status_style(status: str) -> str:
    return {
        "held": "reverse bold yellow",
        "answered": "reverse bold green",
        "failed": "reverse bold red",
    }.get(status, "reverse bold")
