"""Scenario files, `playground test`, and the pytest plugin, as users use them."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from playground.errors import SpecError
from playground.scenarios import load_scenarios

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted(str(p) for p in (ROOT / "agents").glob("*.scenarios.yaml"))

pytest_plugins = ["pytester"]


def playground(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "playground.cli", *args], capture_output=True, text=True, timeout=300, cwd=cwd
    )


def test_bundled_scenarios_pass(tmp_path: Path) -> None:
    proc = playground("test", *EXAMPLES, "--json", "--db", str(tmp_path / "s.db"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["failed"] == 0 and summary["passed"] >= 12
    first = summary["results"][0]
    assert set(first) >= {"name", "status", "failures", "path", "cost_usd", "latency_ms", "session_id"}
    # Every scenario run is a recorded session.
    shown = playground("sessions", "show", first["session_id"], "--json", "--db", str(tmp_path / "s.db"))
    assert json.loads(shown.stdout)["session_id"] == first["session_id"]


def broken_router(tmp_path: Path) -> Path:
    shutil.copy(ROOT / "agents" / "tools.py", tmp_path / "tools.py")
    system = (ROOT / "agents" / "support_router.yaml").read_text()
    broken = system.replace("        handoff: billing\n", "        handoff: general\n", 1).replace(
        '        context: {customer_id: "C-1", question: "{input}"}',
        '        context: {question: "{input}"}',
        1,
    )
    assert broken != system
    (tmp_path / "support_router.yaml").write_text(broken)
    shutil.copy(ROOT / "agents" / "support_router.scenarios.yaml", tmp_path / "support_router.scenarios.yaml")
    return tmp_path / "support_router.scenarios.yaml"


def test_misrouting_fails_exactly_the_billing_scenarios(tmp_path: Path) -> None:
    scenarios = broken_router(tmp_path)
    proc = playground("test", str(scenarios), "--json", "--db", str(tmp_path / "s.db"))
    assert proc.returncode == 1
    results = {r["name"]: r for r in json.loads(proc.stdout)["results"]}
    failed = sorted(name for name, r in results.items() if r["status"] == "failed")
    routed_to_billing = [
        "a billing outage fails the run at billing",
        "a card number and an e-mail are redacted before billing sees them",
        "a malformed tool call is fed back, then corrected",
        "billing survives a rate limit by retrying",
        "double charge goes to billing",
        "refund question goes to billing",
    ]
    assert failed == routed_to_billing  # billing in isolation, and the other routes, still pass
    double = results["double charge goes to billing"]["failures"]
    assert "path: expected router → billing, got router → general" in double
    assert "handoff: nothing was handed to 'billing'" in double
    # A human-readable table says the same.
    human = playground("test", str(scenarios), "--db", str(tmp_path / "s.db"))
    assert "FAIL" in human.stdout and "expected router → billing, got router → general" in human.stdout
    assert "passed" in human.stdout and "failed" in human.stdout


def test_model_override_flag(tmp_path: Path) -> None:
    proc = playground(
        "test", EXAMPLES[-1], "--model", "billing=scripted/other", "--json", "--db", str(tmp_path / "s.db")
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    bad = playground("test", EXAMPLES[-1], "--model", "billing", "--db", str(tmp_path / "s.db"))
    assert bad.returncode == 2 and "AGENT=MODEL" in bad.stderr


def test_a_broken_scenario_file_names_file_line_and_field(tmp_path: Path) -> None:
    shutil.copy(ROOT / "agents" / "tools.py", tmp_path / "tools.py")
    shutil.copy(ROOT / "agents" / "support_router.yaml", tmp_path / "support_router.yaml")
    path = tmp_path / "x.scenarios.yaml"
    path.write_text(
        "system: support_router.yaml\nscenarios:\n  - name: a\n    input: hi\n"
        "    expect: {no_events: [validation_faild]}\n"
    )
    with pytest.raises(SpecError) as caught:
        load_scenarios(path)
    assert caught.value.line == 5
    assert "did you mean 'validation_failed'" in str(caught.value)
    path.write_text("system: support_router.yaml\nscenarios:\n  - name: a\n    inptu: hi\n")
    with pytest.raises(SpecError, match="did you mean 'input'"):
        load_scenarios(path)


USER_TEST = """
async def test_double_charge_goes_to_billing(playground):
    result = await playground.run("support_router.yaml", "I was charged twice on my last invoice")
    result.assert_completed()
    result.assert_path("router", "billing")
    assert "charged twice" in result.handoff_to("billing")["question"]
    result.assert_no_events("validation_failed", "loop_detected", "permission_denied")
    assert "INV-1042" in result.outputs["billing"]


async def test_billing_alone(playground):
    result = await playground.run("support_router.yaml", agent="billing",
                                  context={"customer_id": "C-9", "question": "refund?"})
    result.assert_output("INV-0977")
"""


def user_project(pytester: Any, broken: bool) -> None:
    system = (ROOT / "agents" / "support_router.yaml").read_text()
    if broken:
        system = system.replace("        handoff: billing\n", "        handoff: general\n", 1).replace(
            '        context: {customer_id: "C-1", question: "{input}"}',
            '        context: {question: "{input}"}',
            1,
        )
    pytester.makefile(".yaml", support_router=system)
    pytester.makepyfile(tools=(ROOT / "agents" / "tools.py").read_text())
    pytester.makeini("[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(test_user=USER_TEST)


def test_plugin_fixture_passes_on_a_user_project(pytester: Any) -> None:
    user_project(pytester, broken=False)
    pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider").assert_outcomes(passed=2)


def test_plugin_fixture_fails_when_the_system_misroutes(pytester: Any) -> None:
    user_project(pytester, broken=True)
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*path was router → general, expected router → billing*"])


def test_scenario_files_are_collected_as_tests(pytester: Any) -> None:
    pytester.makefile(".yaml", support_router=(ROOT / "agents" / "support_router.yaml").read_text())
    pytester.makepyfile(tools=(ROOT / "agents" / "tools.py").read_text())
    shutil.copy(ROOT / "agents" / "support_router.scenarios.yaml", pytester.path / "router.scenarios.yaml")
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider", "router.scenarios.yaml")
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed", 0) >= 9 and not outcomes.get("failed")
