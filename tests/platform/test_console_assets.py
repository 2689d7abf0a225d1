"""The console's npm packages are installed exactly as reviewed: each pinned to one version in
package.json, the lock naming that version with its integrity hash, and make installing only
from the lock (`npm ci`), with no package's install scripts run. And the installed packages are
where services/console/assets.py says."""

from __future__ import annotations

import json
import re

from cms.config import REPO_ROOT
from services.console import assets

FRONTEND = REPO_ROOT / "services" / "console" / "frontend"
EXACT_VERSION = re.compile(r"^\d+\.\d+\.\d+$")


def _declared() -> dict[str, str]:
    package = json.loads((FRONTEND / "package.json").read_text())
    return {**package.get("dependencies", {}), **package.get("devDependencies", {})}


def test_each_package_is_pinned_and_locked_with_its_hash() -> None:
    declared = _declared()
    assert {"govuk-frontend", "axe-core"} <= declared.keys()
    locked = json.loads((FRONTEND / "package-lock.json").read_text())["packages"]
    for name, version in declared.items():
        assert EXACT_VERSION.match(version), f"{name} is not pinned to one version: {version!r}"
        entry = locked[f"node_modules/{name}"]
        assert entry["version"] == version, f"the lock has {name} {entry['version']}, package.json {version}"
    for path, entry in locked.items():
        if path:
            assert entry.get("integrity", "").startswith("sha512-"), f"{path} has no integrity hash"


def test_make_installs_only_from_the_lock_without_scripts() -> None:
    installs = [line for line in (REPO_ROOT / "Makefile").read_text().splitlines()
                if not line.lstrip().startswith("#") and re.search(r"\bnpm (i|install|ci)\b", line)]
    assert installs, "the Makefile installs no npm package? the check would look at nothing"
    for line in installs:
        assert "npm ci" in line and "--ignore-scripts" in line, line


def test_the_installed_assets_are_where_the_console_looks() -> None:
    dist = assets.govuk_frontend_dist()
    assert (dist / assets.STYLESHEET).is_file() and (dist / assets.SCRIPT).is_file()
    assert assets.govuk_frontend_version() == _declared()["govuk-frontend"]
    stylesheet = (dist / assets.STYLESHEET).read_text()
    # Every font and image the stylesheet asks for is served from the /assets mount.
    for url in set(re.findall(r"url\((/[^)]+)\)", stylesheet)):
        assert url.startswith(assets.ASSETS_URL + "/"), url
        assert (dist / "assets" / url.removeprefix(assets.ASSETS_URL + "/")).is_file(), url
    assert assets.axe_core_script().read_text().lstrip().startswith(("/*", "!"))
