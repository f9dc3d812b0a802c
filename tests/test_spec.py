"""System files: the contract loads, and every broken file gets one clear file:line message."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from playground.errors import SpecError
from playground.spec import load_system
from tests.helpers import system_from, write_system

ROOT = Path(__file__).resolve().parent.parent

# Written from shared/DESIGN.md alone, not copied from the examples.
DESIGN_EXAMPLE = """
name: support-router
description: Routes each request to one specialist.
pattern: router                 # router | supervisor | pipeline
entry: router
limits: {max_hops: 8, max_turns: 6, timeout_s: 120}
on_loop: clarify
tools:
  lookup_invoice: tools.py:lookup_invoice
agents:
  router:
    model: scripted
    fallbacks: [openai/gpt-4o-mini]
    instructions: Decide which specialist handles the request.
    handoffs:
      - to: billing
        description: billing and invoices
        context: {customer_id: str, question: str}
      - to: general
        description: anything else
        context: {question: str}
    script:
      - match: "(?i)invoice|refund|charge"
        handoff: billing
        context: {customer_id: "C-1", question: "{input}"}
      - match: ".*"
        handoff: general
        context: {question: "{input}"}
  billing:
    model: scripted
    instructions: Answer billing questions.
    tools: [lookup_invoice]
    input: {customer_id: str, question: str}
    script:
      - tool: lookup_invoice
        args: {customer_id: "{customer_id}"}
      - reply: "Your last invoice was {tool_result}."
  general:
    model: scripted
    instructions: Answer anything else.
    script:
      - reply: "General answer to {question}"
  clarify:
    model: scripted
    instructions: Ask what the customer means.
    script:
      - reply: "What do you mean?"
"""

TOOLS = '''
def lookup_invoice(customer_id: str) -> str:
    """Look up an invoice."""
    return f"INV-1 for {customer_id}"
'''


def design_system(tmp_path: Path) -> Path:
    (tmp_path / "tools.py").write_text(TOOLS)
    return write_system(tmp_path, DESIGN_EXAMPLE)


def test_the_design_example_loads(tmp_path: Path) -> None:
    system = load_system(design_system(tmp_path))
    assert system.spec.entry_agent == "router"
    assert [h.to for h in system.spec.agents["router"].handoffs] == ["billing", "general"]
    assert system.spec.agents["billing"].input is not None
    assert system.spec.agents["billing"].input.names == ("customer_id", "question")
    assert system.tools["lookup_invoice"].parameters["required"] == ["customer_id"]


SYSTEM_FILES = sorted(p for p in (ROOT / "agents").glob("*.yaml") if not p.name.endswith(".scenarios.yaml"))


@pytest.mark.parametrize("example", SYSTEM_FILES, ids=lambda p: p.name)
def test_bundled_examples_load(example: Path) -> None:
    assert load_system(example).spec.agents


def broken(tmp_path: Path, text: str) -> SpecError:
    (tmp_path / "tools.py").write_text(TOOLS)
    path = write_system(tmp_path, text)
    with pytest.raises(SpecError) as caught:
        load_system(path)
    assert str(caught.value).startswith(str(path))
    return caught.value


def replace(old: str, new: str) -> str:
    assert old in DESIGN_EXAMPLE
    return DESIGN_EXAMPLE.replace(old, new, 1)


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.lstrip().splitlines(), 1) if needle in line)


def test_unknown_key_names_line_and_suggests(tmp_path: Path) -> None:
    text = replace("    instructions: Answer billing questions.", "    instructructions: Answer billing.")
    error = broken(tmp_path, text)
    assert error.line == line_of(text, "instructructions")
    assert error.field == "agents.billing.instructructions"
    assert "did you mean 'instructions'?" in error.problem


def test_unknown_top_level_key(tmp_path: Path) -> None:
    error = broken(tmp_path, replace("on_loop: clarify", "on_lop: clarify"))
    assert error.field == "on_lop"
    assert "did you mean 'on_loop'" in error.problem


def test_unknown_entry_agent(tmp_path: Path) -> None:
    error = broken(tmp_path, replace("entry: router", "entry: routr"))
    assert (error.field, error.line) == ("entry", 4)
    assert "did you mean 'router'" in error.problem


def test_unknown_handoff_target(tmp_path: Path) -> None:
    text = replace("      - to: general", "      - to: genral")
    error = broken(tmp_path, text)
    assert error.field == "agents.router.handoffs[1].to"
    assert error.line == line_of(text, "to: genral")
    assert "'general'" in error.problem


def test_undeclared_tool(tmp_path: Path) -> None:
    error = broken(tmp_path, replace("tools: [lookup_invoice]", "tools: [lookup_invoce]"))
    assert error.field == "agents.billing.tools[0]"
    assert "did you mean 'lookup_invoice'" in error.problem


def test_tool_file_missing(tmp_path: Path) -> None:
    error = broken(tmp_path, replace("tools.py:lookup_invoice", "nowhere.py:lookup_invoice"))
    assert error.field == "tools.lookup_invoice"
    assert "does not exist" in error.problem


def test_tool_function_missing(tmp_path: Path) -> None:
    error = broken(tmp_path, replace("tools.py:lookup_invoice", "tools.py:lookup_invoices"))
    assert "did you mean 'lookup_invoice'" in error.problem


def test_pattern_must_match_shape(tmp_path: Path) -> None:
    error = broken(tmp_path, replace("pattern: router ", "pattern: supervisor "))
    assert error.field == "agents.router.delegates"
    assert "supervisor" in error.problem


def test_unknown_pattern(tmp_path: Path) -> None:
    error = broken(tmp_path, replace("pattern: router ", "pattern: mesh "))
    assert error.field == "pattern"
    assert "'mesh'" in error.problem


def test_bad_schema_type(tmp_path: Path) -> None:
    error = broken(
        tmp_path,
        replace("input: {customer_id: str, question: str}", "input: {customer_id: string, question: str}"),
    )
    assert error.field == "agents.billing.input"
    assert "unknown type 'string'" in error.problem


def test_bad_regex(tmp_path: Path) -> None:
    error = broken(tmp_path, replace('match: "(?i)invoice|refund|charge"', 'match: "(invoice"'))
    assert error.field == "agents.router.script[0].match"
    assert "invalid regex" in error.problem


def test_script_step_with_two_actions(tmp_path: Path) -> None:
    text = replace(
        '      - reply: "Your last invoice was {tool_result}."',
        '      - reply: "x"\n        handoff: general',
    )
    error = broken(tmp_path, text)
    assert error.field == "agents.billing.script[1]"
    assert "exactly one of" in error.problem


def test_script_handoff_must_be_declared(tmp_path: Path) -> None:
    error = broken(tmp_path, replace("        handoff: billing", "        handoff: biling"))
    assert error.field == "agents.router.script[0].handoff"
    assert "did you mean 'billing'" in error.problem


def test_unknown_template_field(tmp_path: Path) -> None:
    error = broken(
        tmp_path, replace('args: {customer_id: "{customer_id}"}', 'args: {customer_id: "{customer}"}')
    )
    assert error.field == "agents.billing.script[0].args.customer_id"
    assert "{customer}" in error.problem


def test_secret_in_model_settings_is_refused(tmp_path: Path) -> None:
    error = broken(
        tmp_path,
        replace(
            "    instructions: Answer anything else.",
            "    instructions: x\n    model_settings: {api_key: sk-123}",
        ),
    )
    assert "api_key_env" in error.problem


def test_invalid_yaml(tmp_path: Path) -> None:
    error = broken(tmp_path, "name: x\nagents: {a: [1, 2\n")
    assert "not valid YAML" in error.problem
    assert error.line is not None


def test_history_policy(tmp_path: Path) -> None:
    error = broken(
        tmp_path,
        replace(
            "        description: anything else\n",
            "        description: anything else\n        history: some\n",
        ),
    )
    assert error.field == "agents.router.handoffs[1].history"


def test_pipeline_needs_stages(tmp_path: Path) -> None:
    error = broken(
        tmp_path,
        """
        name: p
        pattern: pipeline
        agents:
          a: {script: [{reply: x}]}
        """,
    )
    assert error.field == "pipeline"


def test_supervisor_delegate_unknown(tmp_path: Path) -> None:
    error = broken(
        tmp_path,
        """
        name: s
        pattern: supervisor
        entry: boss
        agents:
          boss: {delegates: [reseach], script: [{reply: x}]}
          research: {script: [{reply: y}]}
        """,
    )
    assert error.field == "agents.boss.delegates[0]"
    assert "did you mean 'research'" in error.problem


def test_cli_reports_a_broken_file_without_traceback(tmp_path: Path) -> None:
    text = replace("entry: router", "entry: routr")
    (tmp_path / "tools.py").write_text(TOOLS)
    path = write_system(tmp_path, text)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "playground.cli",
            "run",
            str(path),
            "--input",
            "hi",
            "--db",
            str(tmp_path / "db.sqlite"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        f"error: {path}:4: entry: entry agent 'routr' is not an agent of this system; did you mean 'router'?"
    )
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""


def test_system_from_helper_loads(tmp_path: Path) -> None:
    system = system_from(
        tmp_path,
        """
        name: tiny
        pattern: pipeline
        pipeline: [only]
        agents:
          only: {script: [{reply: done}]}
        """,
    )
    assert system.spec.entry_agent == "only"


def test_yaml_anchors_and_merge_keys(tmp_path: Path) -> None:
    system = system_from(
        tmp_path,
        """
        name: merged
        pattern: router
        entry: a
        x-common: &common {model: scripted, price: {input: 1.0, output: 2.0}}
        agents:
          a:
            <<: *common
            handoffs: [{to: b}]
            script: [{handoff: b}]
          b:
            <<: *common
            script: [{reply: ok}]
        """,
    )
    assert system.spec.agents["b"].price is not None and system.spec.agents["b"].price.output == 2.0


def test_an_unknown_yaml_tag_is_a_clear_error(tmp_path: Path) -> None:
    error = broken(tmp_path, "name: !!python/name:os.system x\npattern: router\n")
    assert "not valid YAML" in error.problem


def test_secrets_anywhere_in_model_settings_are_refused(tmp_path: Path) -> None:
    error = broken(
        tmp_path,
        replace(
            "    instructions: Answer anything else.",
            "    instructions: x\n    model_settings: {extra_headers: {Authorization: Bearer x}}",
        ),
    )
    assert "extra_headers.Authorization" in error.problem
