"""What the browser tests do on every page of the caseworker console: look for an accessibility
failure with axe-core (run in the page, from the npm package `make assets` installs) and keep a
screenshot for a person to look at.

Screenshots go to .data/test-output/console/ (git-ignored), one PNG per page visited, numbered in
the order the journey saw them, so the folder reads as the caseworker's afternoon."""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cms.config import REPO_ROOT
from services.console.assets import axe_core_script

SCREENSHOTS = REPO_ROOT / ".data" / "test-output" / "console"
# WCAG 2.2 AA, as the Design System's components are built to meet, and axe's own best
# practices left out (they are advice, not the standard).
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
BLOCKING_IMPACTS = ("serious", "critical")


def chromium_executable() -> str | None:
    """The OS package's Chromium (Debian `chromium`; .ci/run installs it): Playwright drives that
    binary and never downloads a browser of its own."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


# Flags for a headless browser on a shared build machine: no sandbox (CI runs as root), no GPU,
# nothing fetched in the background (no updates, no component downloads, no metrics).
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-default-apps", "--no-first-run", "--metrics-recording-only",
                 "--disable-features=Translate,OptimizationHints,MediaRouter"]


@dataclass
class PageCheck:
    """Keeps count of the pages a journey looked at, what axe said about each, and where each
    page's screenshot went."""

    folder: Path = SCREENSHOTS
    seen: list[Path] = field(default_factory=list)
    findings: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        for old in self.folder.glob("*.png"):  # this run's pages only
            old.unlink()
        self._axe = axe_core_script().read_text()

    async def look(self, page: Any, name: str) -> Path:
        """Screenshot the page as it is, then run axe on it: every blocking violation is kept
        (and failed on by `assert_accessible`), so one run reports every page's."""
        slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
        path = self.folder / f"{len(self.seen) + 1:02d}-{slug}.png"
        await page.screenshot(path=str(path), full_page=True)
        self.seen.append(path)
        self.findings[name] = await blocking_violations(page, self._axe)
        return path

    def assert_accessible(self) -> None:
        failing = {name: found for name, found in self.findings.items() if found}
        assert not failing, "axe found serious or critical accessibility failures:\n" + json.dumps(failing, indent=2)


async def blocking_violations(page: Any, axe_source: str) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations of WCAG 2.2 AA on the page, each with its rule,
    what it means and the elements that fail it."""
    if not await page.evaluate("() => typeof window.axe !== 'undefined'"):
        await page.add_script_tag(content=axe_source)
    result = await page.evaluate(
        "async (tags) => await axe.run(document, {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']})",
        AXE_TAGS)
    return [{"rule": violation["id"], "impact": violation["impact"], "help": violation["help"],
             "where": [" ".join(node["target"]) for node in violation["nodes"]][:5]}
            for violation in result["violations"] if violation["impact"] in BLOCKING_IMPACTS]
