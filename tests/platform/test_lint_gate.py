"""The lint gate fails: `make lint` runs ruff and mypy with the project's configuration and stops
on any finding, and `.ci/run` runs it before the tests. Checked on a copy of domain/ with a
finding planted in it, so the repository itself is never touched."""

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "pyproject.toml"
UNUSED_IMPORT = "import fractions as _unused_by_design\n"


def _domain_copy(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "domain", tmp_path / "domain", ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path / "domain"


def _ruff(folder: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "--config", str(CONFIG),
                           "--output-format", "concise", str(folder)],
                          capture_output=True, text=True, cwd=folder.parent, timeout=120)


def _with_unused_import(source: str) -> str:
    """`source` with an unused import where imports belong: after the docstring and any
    `from __future__` import, so the unused import is the only thing wrong with it."""
    after = 0
    for statement in ast.parse(source).body:
        is_docstring = isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant)
        is_future = isinstance(statement, ast.ImportFrom) and statement.module == "__future__"
        if not (is_docstring or is_future):
            break
        after = statement.end_lineno or after
    lines = source.splitlines(keepends=True)
    return "".join(lines[:after]) + UNUSED_IMPORT + "".join(lines[after:])


def test_an_unused_import_in_any_domain_module_fails_ruff(tmp_path: Path) -> None:
    domain = _domain_copy(tmp_path)
    clean = _ruff(domain)
    assert clean.returncode == 0, f"domain/ should be clean before planting a finding:\n{clean.stdout}{clean.stderr}"
    modules = sorted(domain.rglob("*.py"))
    for module in modules:
        module.write_text(_with_unused_import(module.read_text()))
    planted = _ruff(domain)
    assert planted.returncode != 0
    flagged = {line.split(":", 1)[0] for line in planted.stdout.splitlines() if "F401" in line}
    assert flagged == {str(module.relative_to(tmp_path)) for module in modules}, planted.stdout


def test_a_type_error_in_a_domain_module_fails_mypy(tmp_path: Path) -> None:
    domain = _domain_copy(tmp_path)
    money = domain / "money.py"
    money.write_text(money.read_text() + '\n\ndef _pence_as_text() -> int:\n    return "12"\n')
    result = subprocess.run([sys.executable, "-m", "mypy", "--config-file", str(CONFIG), "--no-incremental",
                             "--follow-imports", "silent", "domain/money.py"],
                            capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert result.returncode == 1, result.stdout + result.stderr
    assert 'domain/money.py' in result.stdout and "[return-value]" in result.stdout, result.stdout


def _lint_recipe() -> list[str]:
    """The commands `make lint` runs, as make prints them without running them."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    dry_run = subprocess.run(["make", "--no-print-directory", "-n", "lint"], capture_output=True, text=True,
                             cwd=ROOT, timeout=60)
    assert dry_run.returncode == 0, dry_run.stderr
    return dry_run.stdout.splitlines()


def test_make_lint_runs_ruff_and_mypy_and_lets_their_failure_through() -> None:
    recipe = _lint_recipe()
    assert any(line.endswith("-m ruff check .") for line in recipe), recipe
    assert any(line.endswith("-m mypy") for line in recipe), recipe
    assert not any("|| true" in line or line.startswith("-") for line in recipe), recipe
    makefile = (ROOT / "Makefile").read_text()
    assert ".IGNORE" not in makefile


def test_ci_runs_the_lint_gate_before_the_tests() -> None:
    commands = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()
                if line.strip() and not line.lstrip().startswith("#")]
    assert "set -euo pipefail" in commands
    assert commands.index("make lint") < commands.index("make test")
