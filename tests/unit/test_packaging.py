"""The installed distribution: its own name, an SPDX licence with its file, one version, complete extras."""

from __future__ import annotations

import importlib.metadata as metadata

import scraper
from scraper._extras import DIST, WHAT


def test_the_distribution_has_one_version_an_spdx_licence_and_its_extras():
    meta = metadata.metadata(DIST)
    assert meta["Version"] == scraper.__version__
    assert meta["License-Expression"] == "MIT" and "LICENSE" in (meta.get_all("License-File") or [])
    assert set(meta.get_all("Provides-Extra") or []) == {*WHAT, "test"}, "no two extras install the same thing"


def test_the_test_extra_installs_every_other_extra():
    requires = metadata.requires(DIST) or []
    on_test = [r for r in requires if 'extra == "test"' in r]
    assert any(r.startswith(f"{DIST}[{','.join(sorted(WHAT))}]") for r in on_test), on_test
