import os

import pytest

import fastbce
from fastbce import _core

SIMD_LEVELS = _core.available_simd_levels()


@pytest.fixture(params=SIMD_LEVELS)
def simd_level(request):
    """Runs a test once per instruction-set level this CPU has."""
    before = _core.get_simd_level()
    _core.set_simd_level(request.param)
    yield request.param
    _core.set_simd_level(before)


@pytest.fixture(autouse=True)
def _restore_threads():
    """Tests that change the thread count must not leak it."""
    before = fastbce.get_num_threads()
    yield
    fastbce.set_num_threads(before)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    # In CI a skipped test is a missing test: make it fail the run.
    skipped = terminalreporter.stats.get("skipped", [])
    if os.environ.get("CI") and skipped:
        terminalreporter.write_line(f"CI: {len(skipped)} test(s) skipped; every test must run in CI", red=True)


def pytest_sessionfinish(session, exitstatus):
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if os.environ.get("CI") and reporter is not None and reporter.stats.get("skipped") and exitstatus == 0:
        session.exitstatus = 1
