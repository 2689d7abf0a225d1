"""The generated gRPC code as the installed commands use it: cms_proto is a package of packages
(each folder with its __init__.py, so a wheel ships it) and imports from outside the checkout
without PYTHONPATH, as `.venv/bin/cmsctl` runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_folder_of_generated_code_is_a_package() -> None:
    folders = [p for p in (ROOT / "cms_proto").rglob("*") if p.is_dir() and p.name != "__pycache__"]
    assert folders, "make protos has not generated cms_proto"
    assert [f for f in [ROOT / "cms_proto", *folders] if not (f / "__init__.py").exists()] == []


def test_the_installed_commands_import_the_generated_code(tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    probe = "import cms_proto.case.v1.case_pb2, cms_proto.payments.v1.payments_pb2_grpc, cms.cli.cmsctl"
    result = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
