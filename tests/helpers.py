"""Small helpers shared by the tests."""

from __future__ import annotations

import textwrap
from pathlib import Path

from playground.spec import System, load_system


def write_system(tmp_path: Path, text: str, name: str = "system.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


def system_from(tmp_path: Path, text: str, name: str = "system.yaml") -> System:
    return load_system(write_system(tmp_path, text, name))


def kinds(events: list[object]) -> list[str]:
    return [e.kind for e in events]  # type: ignore[attr-defined]


def of_kind(events: list[object], kind: str) -> list[object]:
    return [e for e in events if e.kind == kind]  # type: ignore[attr-defined]
