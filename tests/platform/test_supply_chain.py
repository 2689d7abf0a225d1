"""What gets installed is exactly what was reviewed: every package pinned with its hashes (the
build tools too), every install checked against them, test tools kept out of the runtime image,
and every container image pinned by digest."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

from cms.config import REPO_ROOT
from scripts import check_image_pins

RUNTIME_LOCK = REPO_ROOT / "requirements.lock"
DEV_LOCK = REPO_ROOT / "requirements-dev.lock"
TEST_AND_LINT_TOOLS = {"pytest", "pytest-asyncio", "pytest-timeout", "hypothesis", "playwright", "ruff", "mypy"}


def pins(lock: Path) -> dict[str, tuple[str, int]]:
    """name -> (version, number of hashes) of every requirement in a pip-format lock."""
    found: dict[str, tuple[str, int]] = {}
    current = None
    for line in lock.read_text().splitlines():
        requirement = re.match(r"^([A-Za-z0-9_.-]+)==(\S+)", line)
        if requirement:
            current = requirement.group(1).lower().replace("_", "-")
            found[current] = (requirement.group(2), 0)
        elif current and line.strip().startswith("--hash=sha256:"):
            version, hashes = found[current]
            found[current] = (version, hashes + 1)
        elif line and not line.startswith((" ", "#")):
            raise AssertionError(f"{lock.name}: not a pinned requirement: {line!r}")
    return found


def test_every_locked_package_is_pinned_with_hashes_and_the_build_tools_are_among_them() -> None:
    for lock in (RUNTIME_LOCK, DEV_LOCK):
        locked = pins(lock)
        assert [name for name, (_, hashes) in locked.items() if hashes == 0] == [], lock.name
        assert {"setuptools", "wheel"} <= set(locked), lock.name
    build = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["build-system"]["requires"]
    locked = pins(RUNTIME_LOCK)
    assert sorted(build) == sorted(f"{name}=={locked[name][0]}" for name in ("setuptools", "wheel"))


def test_test_tools_stay_out_of_the_runtime_lock_and_both_locks_agree() -> None:
    runtime, dev = pins(RUNTIME_LOCK), pins(DEV_LOCK)
    assert TEST_AND_LINT_TOOLS & set(runtime) == set()
    assert TEST_AND_LINT_TOOLS <= set(dev)
    assert {name: dev[name][0] for name in runtime} == {name: version for name, (version, _) in runtime.items()}


def test_every_install_is_checked_against_the_hashes() -> None:
    """Each `pip install` in make, CI and the image either uses --require-hashes, or installs
    the project itself with nothing resolved or built from outside the lock."""
    assert "make lint" in (REPO_ROOT / ".ci/run").read_text()  # CI installs through make venv
    for path in ("Makefile", ".ci/run", "deploy/docker/Dockerfile"):
        text = (REPO_ROOT / path).read_text().replace("\\\n", " ")
        installs = [line for line in text.splitlines()
                    if ("pip install" in line or "$(PIP_INSTALL)" in line)
                    and not line.lstrip().startswith("#") and ":=" not in line]  # not the variable's definition
        assert installs or path == ".ci/run", f"{path} installs nothing? the check would look at nothing"
        for line in installs:
            own_project = "--no-deps" in line and "--no-build-isolation" in line and "-e ." in line
            assert "--require-hashes" in line or own_project, f"{path}: {line.strip()}"


def test_every_container_image_is_pinned_by_digest() -> None:
    errors, placeholders = check_image_pins.problems(strict=False)
    assert errors == []
    assert check_image_pins.image_references(), "the check found the images to look at"
    # Placeholders (digests not yet recorded) are reported by the script, and --strict fails on them.
    strict_errors, _ = check_image_pins.problems(strict=True)
    assert len(strict_errors) == len(placeholders)


def test_an_image_pinned_by_tag_only_is_refused(tmp_path: Path, monkeypatch) -> None:
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("FROM python:3.11-slim AS base\nFROM base\n")
    monkeypatch.setattr(check_image_pins, "ROOT", tmp_path)
    monkeypatch.setattr(check_image_pins, "DOCKERFILES", [dockerfile])
    monkeypatch.setattr(check_image_pins, "COMPOSE_FILES", [])
    errors, _ = check_image_pins.problems(strict=False)
    assert errors == ["Dockerfile:1: python:3.11-slim is not pinned by digest (name:tag@sha256:<64 hex>)"]


def test_the_check_runs_as_a_script() -> None:
    done = subprocess.run([sys.executable, "scripts/check_image_pins.py"], cwd=REPO_ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout
