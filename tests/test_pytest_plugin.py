"""The pytest plugin as a user's test suite meets it: failures that say where the session is,
its frames hidden, JUnit properties, duplicate scenario names, collection that can be off."""

from __future__ import annotations

import asyncio
import re
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from playground.engine.runtime import Runtime
from playground.pytest_plugin import PlaygroundResult
from playground.spec import load_system
from playground.store import Store

ROOT = Path(__file__).resolve().parent.parent

pytest_plugins = ["pytester"]

MISROUTED = """
async def test_route(playground):
    result = await playground.run("support_router.yaml", "I was charged twice on my last invoice")
    result.assert_path("router", "billing")
"""

FAILING_SCENARIO = """system: support_router.yaml
scenarios:
  - name: billing goes to technical
    input: I was charged twice on my last invoice
    expect: {path: [router, technical]}
"""


def project(pytester: Any, *, test: str | None = None, scenarios: str | None = None, ini: str = "") -> None:
    pytester.makefile(".yaml", support_router=(ROOT / "agents" / "support_router.yaml").read_text())
    pytester.makepyfile(tools=(ROOT / "agents" / "tools.py").read_text())
    pytester.makeini("[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n" + ini)
    if test is not None:
        pytester.makepyfile(test_user=test)
    if scenarios is not None:
        (pytester.path / "router.scenarios.yaml").write_text(scenarios, encoding="utf-8")


def session_in(db: Path, session_id: str) -> str:
    async def go() -> str:
        async with Store(db) as store:
            return (await store.session(session_id)).status

    return asyncio.run(go())


def test_a_failed_helper_names_the_session_and_hides_the_plugin(pytester: Any, tmp_path: Path) -> None:
    project(pytester, test=MISROUTED.replace('"router", "billing"', '"router", "technical"'))
    db = tmp_path / "kept.db"
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", f"--playground-db={db}")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    found = re.search(r"expected router → technical \(session ([0-9a-f]+) in (\S+)\)", out)
    assert found, out
    assert Path(found.group(2)) == db.resolve()
    assert session_in(db, found.group(1)) == "completed"  # kept: it can be opened, forked, replayed
    assert "pytest_plugin.py" not in out  # the helper's own frames are hidden


def test_a_failed_scenario_is_kept_under_pytests_temporary_directory(pytester: Any) -> None:
    project(pytester, scenarios=FAILING_SCENARIO)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "router.scenarios.yaml")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    found = re.search(r"failed \(session ([0-9a-f]+) in (\S+playground\.db)\)", out)
    assert found, out
    assert session_in(Path(found.group(2)), found.group(1)) == "completed"
    assert f"playground sessions show {found.group(1)} --db {found.group(2)}" in out


def test_junit_xml_carries_the_session_and_cost(pytester: Any, tmp_path: Path) -> None:
    project(pytester, test=MISROUTED, scenarios=FAILING_SCENARIO)
    report = tmp_path / "junit.xml"
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", f"--junitxml={report}")
    result.assert_outcomes(passed=1, failed=1)
    cases = ET.parse(report).getroot().iter("testcase")
    properties = [{p.get("name"): p.get("value") for p in case.iter("property")} for case in cases]
    assert len(properties) == 2
    for found in properties:
        assert re.fullmatch(r"[0-9a-f]{12}", found["playground_session_id"] or "")
        assert float(found["playground_cost_usd"] or "0") > 0


def test_duplicate_scenario_names_are_refused_at_collection(pytester: Any) -> None:
    duplicated = FAILING_SCENARIO + "  - name: billing goes to technical\n    input: again\n"
    project(pytester, scenarios=duplicated)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "router.scenarios.yaml")
    assert result.ret != 0
    result.stdout.fnmatch_lines(["*router.scenarios.yaml:6: scenarios.1.name:*names are unique*"])


def test_scenario_collection_can_be_turned_off(pytester: Any) -> None:
    project(pytester, scenarios=FAILING_SCENARIO, ini="playground_scenarios = false\n")
    shutil.copy(pytester.path / "router.scenarios.yaml", pytester.path / "other.scenarios.yaml")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret == 5  # no tests collected


def test_the_result_repr_is_short() -> None:
    async def go() -> PlaygroundResult:
        system = load_system(ROOT / "agents" / "support_router.yaml")
        return PlaygroundResult(await Runtime(system).run("I was charged twice on my last invoice"))

    result = asyncio.run(go())
    text = repr(result)
    assert text.startswith("<PlaygroundResult session ") and "router → billing" in text
    assert len(text) < 120
