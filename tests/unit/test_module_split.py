"""The browser and wire packages split by concern: no cycle joins lanes and the runtime (lanes see the
runtime only through a Protocol). That every module imports alone is tests/unit/test_imports.py."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "scraper"


def imported(module: str) -> set[str]:
    """The sibling modules ``module`` imports (relative imports of its own package), at any level."""
    tree = ast.parse((PACKAGE / module.split(".")[1] / f"{module.split('.')[2]}.py").read_text())
    return {
        node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module
    }


def test_lanes_do_not_import_the_runtime_and_navigation_knows_no_lanes():
    assert "_runtime" not in imported("scraper.browser._lanes")
    assert not {"_lanes", "_runtime"} & imported("scraper.browser._navigate")
    assert not {"_lanes", "_runtime"} & imported("scraper.browser._hosts")


def test_scrubbing_and_redaction_share_the_one_rule_and_not_each_other():
    assert "_secrets" in imported("scraper.wire._scrub") and "_secrets" in imported("scraper.wire._redact")
    assert "_redact" not in imported("scraper.wire._scrub") and "_scrub" not in imported("scraper.wire._redact")
