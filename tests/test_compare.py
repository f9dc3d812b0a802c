"""playground compare: two variants of one agent on the same inputs, reported and stored."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.helpers import example_copy

ROOT = Path(__file__).resolve().parent.parent


def workspace(tmp_path: Path) -> Path:
    example_copy(tmp_path)
    shutil.copy(ROOT / "agents" / "support_router.scenarios.yaml", tmp_path / "support_router.scenarios.yaml")
    return tmp_path


def playground(tmp_path: Path, *args: str, expect: int = 0) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "playground.cli", *args, "--db", str(tmp_path / "s.db")],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert proc.returncode == expect, proc.stdout + proc.stderr
    return proc.stdout


def two_billing_versions(tmp_path: Path) -> tuple[str, str]:
    """Record billing's version from the file, then a second one that hands refunds to general."""
    playground(tmp_path, "run", "support_router.yaml", "-i", "hello", "-q")
    system = tmp_path / "support_router.yaml"
    text = system.read_text()
    edited = text.replace(
        "    tools: [lookup_invoice]\n    input: {customer_id: str, question: str}\n",
        "    tools: [lookup_invoice]\n    input: {customer_id: str, question: str}\n"
        "    handoffs: [{to: general}]\n",
    ).replace(
        "    script:\n      - tool: lookup_invoice\n",
        '    script:\n      - match: "(?i)where is my refund"\n        handoff: general\n'
        '        context: {question: "{question}"}\n      - tool: lookup_invoice\n',
    )
    assert edited != text
    system.write_text(edited)
    playground(tmp_path, "run", "support_router.yaml", "-i", "hello", "-q")
    listed = json.loads(
        playground(tmp_path, "versions", "support_router.yaml", "--agent", "billing", "--json")
    )
    ids = [v["version_id"] for v in sorted(listed, key=lambda v: v["created_at"])]
    assert len(ids) == 2
    return ids[0], ids[1]


def test_compare_two_versions_over_a_scenario_file(tmp_path: Path) -> None:
    workspace(tmp_path)
    old, new = two_billing_versions(tmp_path)
    report: dict[str, Any] = json.loads(
        playground(
            tmp_path,
            "compare",
            "support_router.yaml",
            "--agent",
            "billing",
            "--a",
            old[:6],
            "--b",
            new[:6],
            "--scenarios",
            "support_router.scenarios.yaml",
            "--json",
        )
    )
    assert report["a"]["version"] == old and report["b"]["version"] == new
    by_name = {i["name"]: i for i in report["inputs"]}
    refund = by_name["refund question goes to billing"]
    assert refund["path_changed"]
    assert refund["a"]["path"] == ["router", "billing"]
    assert refund["b"]["path"] == ["router", "billing", "general"]
    assert refund["a"]["passed"] and not refund["b"]["passed"]
    assert refund["deltas"]["general"]["cost_usd"] > 0
    assert {"op": "insert", "text": "Thanks"} in [
        {"op": p["op"], "text": p["text"].split()[0]} for p in refund["output_diff"] if p["op"] == "insert"
    ]
    assert not by_name["outage goes to technical"]["path_changed"]
    summary = report["summary"]
    assert summary["path_changed"] == ["refund question goes to billing"]
    assert summary["a"]["pass_rate"] > summary["b"]["pass_rate"]
    assert summary["a"]["cost_usd"] > 0 and summary["b"]["cost_usd"] > 0
    # Stored: listed and reopened.
    listed = json.loads(playground(tmp_path, "comparisons", "--json"))
    assert [c["comparison_id"] for c in listed] == [report["comparison_id"]]
    again = json.loads(playground(tmp_path, "comparisons", "show", report["comparison_id"], "--json"))
    assert again["inputs"] == report["inputs"]
    human = playground(tmp_path, "comparisons", "show", report["comparison_id"])
    assert "path changed for: refund question goes to billing" in human


def test_compare_models_on_one_input(tmp_path: Path) -> None:
    workspace(tmp_path)
    report = json.loads(
        playground(
            tmp_path,
            "compare",
            "support_router.yaml",
            "--agent",
            "billing",
            "--a",
            "scripted",
            "--b",
            "scripted/b",
            "--input",
            "I was charged twice",
            "--json",
        )
    )
    item = report["inputs"][0]
    assert report["a"]["model"] == "scripted" and report["b"]["model"] == "scripted/b"
    assert not item["path_changed"] and not item["output_changed"]
    assert item["a"]["session_id"] != item["b"]["session_id"]


def test_compare_over_a_session_replays_the_unchanged_agents(tmp_path: Path) -> None:
    workspace(tmp_path)
    run = json.loads(playground(tmp_path, "run", "support_router.yaml", "-i", "refund please", "--json"))
    report = json.loads(
        playground(
            tmp_path,
            "compare",
            "support_router.yaml",
            "--agent",
            "billing",
            "--a",
            "scripted/a",
            "--b",
            "scripted/b",
            "--session",
            run["session_id"],
            "--json",
        )
    )
    item = report["inputs"][0]
    for side in ("a", "b"):
        shown = json.loads(playground(tmp_path, "sessions", "show", item[side]["session_id"], "--json"))
        responded = [e for e in shown["events"] if e["kind"] == "model_responded"]
        assert [(e["agent"], e["replayed"]) for e in responded] == [
            ("router", True),
            ("billing", False),
            ("billing", False),
        ]
        assert shown["parent_session_id"] == run["session_id"]
