import os
import sys
from pathlib import Path

import pytest
from hypothesis import settings

sys.path.insert(0, str(Path(__file__).parent))


def on_ci() -> bool:
    """Whether the suite runs on CI (``CI`` set to anything but an empty, ``0``, ``false`` or ``no`` value)."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


# CI runs the same examples every time (a red CI must be reproducible); local runs explore.
settings.register_profile("ci", derandomize=True, print_blob=True)
if on_ci():
    settings.load_profile("ci")


def _no_skip_on_ci(report: pytest.TestReport | pytest.CollectReport) -> None:
    """Under CI nothing may skip: a skip (a missing browser, ffmpeg, an optional package) is a failure,
    so that a test that did not run can never pass silently. Expected failures (xfail) stay as they are."""
    if not (on_ci() and report.skipped) or hasattr(report, "wasxfail"):
        return
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    report.outcome = "failed"
    report.longrepr = f"skipped under CI, where nothing may skip: {reason.removeprefix('Skipped: ')}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> object:
    outcome = yield
    _no_skip_on_ci(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> object:
    outcome = yield
    _no_skip_on_ci(outcome.get_result())
