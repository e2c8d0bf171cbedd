"""A missing optional extra is one line that says what to install, with exit status 2 and no traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest

from scraper import MissingExtraError
from scraper._extras import import_extra

# A command run in a fresh interpreter where the extra's module cannot be imported (None in sys.modules).
WITHOUT = "import sys; sys.modules[{module!r}] = None; from scraper.cli import main; sys.exit(main({argv!r}))"


@pytest.mark.parametrize(
    ("module", "argv", "extra"),
    [
        ("starlette", ["serve", "--port", "0"], "serve"),
        ("uvicorn", ["serve", "--port", "0"], "serve"),
        ("redis", ["serve", "--port", "0", "--state", "redis://127.0.0.1:9/0"], "redis"),
        ("patchright", ["chat", "--driver", "patchright", "--url", "http://127.0.0.1:9/", "hi"], "stealth"),
    ],
)
def test_a_command_without_its_extra_says_what_to_install(module, argv, extra):
    code = WITHOUT.format(module=module, argv=argv)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    assert f"pip install 'wpchat-scraper[{extra}]'" in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr


@pytest.mark.parametrize(("module", "extra"), [("aiohttp", "direct"), ("patchright.async_api", "stealth")])
def test_import_extra_names_the_extra(monkeypatch, module, extra):
    for name in (module, module.split(".")[0]):  # the top package unimportable, none of it loaded
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(MissingExtraError) as info:
        import_extra(module, extra)
    assert info.value.extra == extra and str(info.value).endswith(f"pip install 'wpchat-scraper[{extra}]'")


def test_a_broken_module_inside_an_installed_extra_is_not_hidden(monkeypatch, tmp_path):
    (tmp_path / "installed_extra.py").write_text("import a_dependency_it_lost\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError) as info:
        import_extra("installed_extra", "direct")
    assert info.value.name == "a_dependency_it_lost"
