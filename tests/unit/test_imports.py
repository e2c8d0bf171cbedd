"""Every module imports alone: no import cycle or order dependence hides anywhere in the package."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import scraper

MODULES = sorted(
    info.name
    for info in pkgutil.walk_packages(scraper.__path__, "scraper.")
    if not info.name.endswith("__main__")  # running it is the command line
)

# In a fresh interpreter, each module is imported with none of the package loaded before it (what an
# interpreter of its own would see of the package; third-party modules stay loaded, which is faster).
ALONE = """
import importlib, sys, traceback
failed = []
for module in sys.argv[1:]:
    for name in [n for n in sys.modules if n == "scraper" or n.startswith("scraper.")]:
        del sys.modules[name]
    try:
        importlib.import_module(module)
    except Exception:
        failed.append(module + ": " + traceback.format_exc().strip().splitlines()[-1])
print("\\n".join(failed))
"""


def test_each_module_imports_alone_in_a_fresh_interpreter():
    assert "scraper.browser._lanes" in MODULES and "scraper.cli" in MODULES, MODULES
    result = subprocess.run([sys.executable, "-c", ALONE, *MODULES], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", result.stdout
