"""Test-wide settings.

No test may leave a warm grading server behind (several assert that no process survives
them), so ``grade`` run by any test grades in-process; ``test_server.py`` turns the server
back on for its own subprocesses, each with its own socket folder.
"""

from __future__ import annotations

import os

import pytest


def pytest_configure(config: pytest.Config) -> None:
    os.environ["GRADER_NO_SERVER"] = "1"
