"""Every container image the deployment pulls is pinned by digest, so a re-pushed tag cannot
change what runs: the Dockerfile's FROM lines (ARG defaults resolved) and compose's `image:`.

A digest of all zeros is the recorded placeholder for an image whose digest could not be looked
up where the pin was written (no access to the registry): it is reported, and fails with
--strict, which a release build runs once the digests are filled in (deploy/README.md).

    python scripts/check_image_pins.py [--strict]
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILES = [ROOT / "deploy/docker/Dockerfile"]
COMPOSE_FILES = [ROOT / "deploy/docker/compose.yaml"]
PINNED = re.compile(r"^[\w./-]+(:[\w.-]+)?@sha256:[0-9a-f]{64}$")
PLACEHOLDER = "@sha256:" + "0" * 64


def image_references() -> list[tuple[str, str]]:
    """(where, image reference) for every image the deployment pulls."""
    found: list[tuple[str, str]] = []
    for dockerfile in DOCKERFILES:
        defaults: dict[str, str] = {}
        stages: set[str] = set()
        for number, line in enumerate(dockerfile.read_text().splitlines(), 1):
            words = line.split()
            if len(words) >= 2 and words[0].upper() == "ARG" and "=" in words[1]:
                name, _, value = words[1].partition("=")
                defaults[name] = value
            elif len(words) >= 2 and words[0].upper() == "FROM":
                image = _with_arguments(words[1], defaults)
                if image not in stages:  # FROM an earlier stage pulls nothing
                    found.append((f"{dockerfile.relative_to(ROOT)}:{number}", image))
                if len(words) >= 4 and words[2].upper() == "AS":
                    stages.add(words[3])
    for compose in COMPOSE_FILES:
        for number, line in enumerate(compose.read_text().splitlines(), 1):
            match = re.match(r"^\s*image:\s*(\S+)", line)
            if match:
                found.append((f"{compose.relative_to(ROOT)}:{number}", match.group(1)))
    return found


def _with_arguments(text: str, defaults: dict[str, str]) -> str:
    """`text` with each `$NAME` / `${NAME}` replaced by that ARG's default, when it has one."""
    return re.sub(r"\$\{?(\w+)\}?", lambda match: defaults.get(match.group(1), match.group(0)), text)


def problems(strict: bool) -> tuple[list[str], list[str]]:
    """(errors, placeholders): references not pinned by digest; pins still to fill in."""
    errors, placeholders = [], []
    for where, image in image_references():
        if not PINNED.match(image):
            errors.append(f"{where}: {image} is not pinned by digest (name:tag@sha256:<64 hex>)")
        elif image.endswith(PLACEHOLDER):
            placeholders.append(f"{where}: {image.removesuffix(PLACEHOLDER)} has the placeholder digest")
    return (errors + placeholders if strict else errors), placeholders


def main(argv: list[str]) -> int:
    strict = "--strict" in argv
    errors, placeholders = problems(strict)
    for line in placeholders if not strict else []:
        print(f"warning: {line}; record its digest (deploy/README.md)")
    for line in errors:
        print(f"error: {line}")
    return 1 if errors else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
