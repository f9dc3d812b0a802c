"""A diff of two agent versions (the text of :func:`playground.versions.diff_specs`), coloured."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from playground.versions import NO_DIFFERENCES

SPLIT_AT = 60
"""Field changes longer than this show the old and the new value on lines of their own."""


def diff_text(diff: str) -> Text:
    """Colour a ``diff_specs`` text: added lines green, removed red, hunks and field changes marked."""
    text = Text(no_wrap=False)
    if diff == NO_DIFFERENCES:
        text.append(diff, "dim italic")
        return text
    for index, line in enumerate(diff.splitlines()):
        if index:
            text.append("\n")
        if line.startswith(("+++ ", "--- ")):
            text.append(line, "bold")
        elif line.startswith("@@"):
            text.append(line, "cyan")
        elif line.startswith("+"):
            text.append(line, "green")
        elif line.startswith("-"):
            text.append(line, "red")
        elif line.startswith(" "):
            text.append(line, "dim")
        elif ":" in line:
            # A field line, ``model: a -> b`` or ``tools: +x -y``: the field bold, the change yellow.
            field, _, change = line.partition(":")
            text.append(f"{field}:", "bold")
            old, arrow, new = change.partition(" -> ")
            if arrow and len(line) > SPLIT_AT and " -> " not in new:
                # A long change (a script step) reads better as a removed and an added line.
                text.append(f"\n  - {old.strip()}", "red")
                text.append(f"\n  + {new.strip()}", "green")
            else:
                text.append(change, "yellow")
        else:
            text.append(line)
    return text


class SpecDiff(Static):
    """Shows one diff; the screen calls :meth:`show`."""

    def show(self, diff: str) -> None:
        self.update(diff_text(diff))
