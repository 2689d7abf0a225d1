"""Where the console's browser assets are on disk: the GOV.UK Design System's built CSS, fonts,
images and JavaScript (govuk-frontend), and axe-core for the accessibility checks in the tests.

Both come from the npm registry, pinned in services/console/frontend/package-lock.json and
installed by `make assets` (`npm ci`) into services/console/frontend/node_modules, which git
ignores. A container image or a machine that installs them elsewhere names that node_modules
folder in CMS_CONSOLE_NODE_MODULES."""

from __future__ import annotations

import os
from pathlib import Path

FRONTEND_DIR = Path(__file__).resolve().parent / "frontend"
# govuk-frontend's stylesheet asks for its fonts and images at /assets/fonts/... and
# /assets/images/... (its default $govuk-assets-path), so dist/govuk/assets is served at /assets;
# the stylesheet and script themselves (dist/govuk/govuk-frontend.min.css, .min.js) at /govuk.
ASSETS_URL = "/assets"
GOVUK_URL = "/govuk"
STYLESHEET = "govuk-frontend.min.css"
SCRIPT = "govuk-frontend.min.js"


class AssetsMissing(RuntimeError):
    """The npm packages are not installed: `make assets` installs them."""


def node_modules() -> Path:
    return Path(os.environ.get("CMS_CONSOLE_NODE_MODULES") or FRONTEND_DIR / "node_modules")


def _installed(path: Path, package: str) -> Path:
    if not path.exists():
        raise AssetsMissing(f"{package} is not installed at {path}: run `make assets` "
                            "(npm ci from services/console/frontend/package-lock.json)")
    return path


def govuk_frontend_dist(folder: Path | None = None) -> Path:
    """govuk-frontend's built folder: govuk-frontend.min.css, govuk-frontend.min.js and assets/
    (fonts/, images/, manifest.json, rebrand/ where the version has one). `folder` is a
    node_modules folder other than the configured one."""
    return _installed((folder or node_modules()) / "govuk-frontend" / "dist" / "govuk", "govuk-frontend")


def govuk_frontend_version(folder: Path | None = None) -> str:
    """The installed govuk-frontend's version, for a cache-busting query on the asset links."""
    import json

    package = _installed((folder or node_modules()) / "govuk-frontend" / "package.json", "govuk-frontend")
    return str(json.loads(package.read_text())["version"])


def static_mounts(folder: Path | None = None) -> list[tuple[str, Path]]:
    """(URL path, folder) pairs for the console to serve as static files, e.g. with Starlette:
    `Mount(url, app=StaticFiles(directory=folder))`. The base template links
    f"{GOVUK_URL}/{STYLESHEET}" and f"{GOVUK_URL}/{SCRIPT}"; the favicon and crest are under
    f"{ASSETS_URL}/images/"."""
    dist = govuk_frontend_dist(folder)
    return [(ASSETS_URL, dist / "assets"), (GOVUK_URL, dist)]


def axe_core_script() -> Path:
    """axe-core's minified script, which the browser tests inject into each page."""
    return _installed(node_modules() / "axe-core" / "axe.min.js", "axe-core")
