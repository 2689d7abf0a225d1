"""The replay kit: recorded workflow histories, the manifest that says what each one covers, and
the one way to record a new one.

A recorded history stands for workflows still running on the code that wrote it, so it is
never replaced: a new behaviour is recorded under the next version prefix (v2_, v3_, ...) of its
folder, next to the old ones. tests/histories.toml lists every history with the workflow it
replays against and the patches (`workflow.patched("...")` markers) it went through, and every
patch with the date it landed; tests/test_replay.py replays them all and checks the manifest.

Recording: run the tests that drive the new behaviour with CMS_RECORD_HISTORIES=1 (and
CMS_HISTORY_VERSION=vN to choose the prefix; by default the next free one of each folder). Each
`record_history` call then writes `<folder>/<version>_<scenario>.json` and adds its manifest entry.
"""

from __future__ import annotations

import ast
import json
import os
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import cache
from pathlib import Path
from typing import Any, Protocol

from temporalio.client import WorkflowHistory

from cms.payload_codec import decode_payloads_in
from tests.helpers.codec import codec_data_converter
from workflows.converter import STRICT_DATA_CONVERTER

TESTS = Path(__file__).resolve().parents[1]
WORKFLOWS = TESTS.parent / "workflows"
MANIFEST = TESTS / "histories.toml"

CASE_HISTORIES = TESTS / "cases" / "histories"              # CaseWorkflow: lifecycle, payments, review
CASE_CHANGE_HISTORIES = TESTS / "changes" / "case_histories"  # CaseWorkflow with changes of circumstances
CHANGE_HISTORIES = TESTS / "changes" / "histories"          # ChangeWorkflow
PAYMENT_HISTORIES = TESTS / "payments" / "histories"        # payment workflows
ENFORCEMENT_HISTORIES = TESTS / "enforcement" / "histories"  # EnforcementWorkflow

RECORD_ENV = "CMS_RECORD_HISTORIES"
VERSION_ENV = "CMS_HISTORY_VERSION"

# A case continues as new at each annual review, so a CaseWorkflow run lasts a year, and its
# first run a year from the initial effective date, after up to a month of assessment (the
# default decision comes at day 28). A patch's old branch can go no sooner than this after the
# patch reached every worker; workflows not bounded by the annual review (changes waiting for a
# caseworker, disbursements retrying until paid) must also be seen closed (README).
LONGEST_CASE_RUN = timedelta(days=365 + 31)

_PATCH_MARKER = "core_patch"
_PATCH_DETAILS = "patch-data"
_VERSION = re.compile(r"^v(\d+)_")
_PATCH_FUNCTIONS = ("patched", "deprecate_patch")


class HistoryAlreadyRecorded(FileExistsError):
    """A history of that name exists (or did, and was retired): it is never replaced."""


class ManifestError(ValueError):
    """tests/histories.toml does not have the shape the replay kit reads."""


# --- reading a history -------------------------------------------------------------------------

def read_history(path: Path) -> WorkflowHistory:
    return WorkflowHistory.from_json(f"replay-{path.stem}", json.loads(path.read_text()))


def workflow_type(history: WorkflowHistory) -> str:
    """The workflow type the history was started as (its first event)."""
    return history.events[0].workflow_execution_started_event_attributes.workflow_type.name


def patch_markers(history: WorkflowHistory) -> frozenset[str]:
    """The patches the run went through: one MarkerRecorded event per `workflow.patched(id)` that
    returned True (and per `workflow.deprecate_patch(id)`), its details {"id": ..., "deprecated": ...}."""
    found = set()
    for event in history.events:
        if not event.HasField("marker_recorded_event_attributes"):
            continue
        marker = event.marker_recorded_event_attributes
        if marker.marker_name != _PATCH_MARKER:
            continue   # local activity results and the like
        data, = STRICT_DATA_CONVERTER.payload_converter.from_payloads(list(marker.details[_PATCH_DETAILS].payloads))
        found.add(data["id"])
    return frozenset(found)


def history_files(tests: Path = TESTS) -> list[Path]:
    """Every recorded history: the JSON files in any folder named *histories under tests/."""
    return sorted(path for path in tests.glob("**/*histories/*.json") if path.is_file())


def manifest_key(path: Path, manifest: Path = MANIFEST) -> str:
    """How the manifest names a history: its path from the manifest's folder, e.g.
    "cases/histories/v9_case_first_year.json"."""
    return path.resolve().relative_to(manifest.resolve().parent).as_posix()


# --- the manifest ------------------------------------------------------------------------------

@dataclass(frozen=True)
class HistoryEntry:
    file: str                   # from the manifest's folder
    workflow: str               # the workflow type it replays against
    patches: frozenset[str]     # the patch markers in it
    recorded_by: str            # the test that records this scenario (file::test)
    note: str = ""


@dataclass(frozen=True)
class PatchEntry:
    name: str
    workflow: str
    landed: date                # when the patch landed on main: no run started before it has it
    deprecated: date | None = None              # when its old branch went (workflow.deprecate_patch)
    retired: tuple[str, ...] = ()               # pre-patch histories removed then: they cannot replay
    retired_why: str = ""


@dataclass(frozen=True)
class Manifest:
    histories: Mapping[str, HistoryEntry]
    patches: Mapping[str, PatchEntry]

    def retired(self) -> set[str]:
        return {file for patch in self.patches.values() for file in patch.retired}


_HISTORY_KEYS: Mapping[str, type] = {"workflow": str, "patches": list, "recorded_by": str, "note": str}
_PATCH_KEYS: Mapping[str, type] = {"workflow": str, "landed": date, "deprecated": date, "retired": list, "retired_why": str}


def _checked(where: str, table: Any, allowed: Mapping[str, type], required: Iterable[str]) -> dict[str, Any]:
    if not isinstance(table, dict):
        raise ManifestError(f"{where}: expected a table")
    unknown = sorted(set(table) - set(allowed))
    missing = sorted(set(required) - set(table))
    if unknown or missing:
        raise ManifestError(f"{where}: unknown keys {unknown}, missing keys {missing}")
    for key, value in table.items():
        if not isinstance(value, allowed[key]):
            raise ManifestError(f"{where}: {key} must be a {allowed[key].__name__}, not {value!r}")
    return table


def load_manifest(path: Path = MANIFEST) -> Manifest:
    data = tomllib.loads(path.read_text())
    unknown = sorted(set(data) - {"history", "patches"})
    if unknown:
        raise ManifestError(f"{path.name}: unknown top-level tables {unknown} (history, patches)")
    histories = {}
    for file, table in data.get("history", {}).items():
        entry = _checked(f'history."{file}"', table, _HISTORY_KEYS, ("workflow", "patches", "recorded_by"))
        histories[file] = HistoryEntry(file, entry["workflow"], frozenset(entry["patches"]), entry["recorded_by"],
                                       entry.get("note", ""))
    patches = {}
    for name, table in data.get("patches", {}).items():
        entry = _checked(f"patches.{name}", table, _PATCH_KEYS, ("workflow", "landed"))
        patches[name] = PatchEntry(name, entry["workflow"], entry["landed"], entry.get("deprecated"),
                                   tuple(entry.get("retired", ())), entry.get("retired_why", ""))
    return Manifest(histories, patches)


def _toml_entry(key: str, workflow: str, patches: Iterable[str], recorded_by: str) -> str:
    # JSON strings are TOML basic strings.
    return (f"\n[history.{json.dumps(key)}]\nworkflow = {json.dumps(workflow)}\n"
            f"patches = {json.dumps(sorted(patches))}\nrecorded_by = {json.dumps(recorded_by)}\n")


def _toml_patch(name: str, workflow: str, landed: date) -> str:
    return (f"\n# New with this recording: `landed` is the day it was recorded; make it the day the patch\n"
            f"# lands on main if that is later.\n[patches.{json.dumps(name)}]\nworkflow = {json.dumps(workflow)}\n"
            f"landed = {landed.isoformat()}\n")


# --- patches in the workflow code ---------------------------------------------------------------

@dataclass
class PatchUse:
    """Where a patch name appears in workflows/: called with patched(), deprecate_patch(), or only
    named by a module constant ending in _PATCH."""
    patched: list[str] = field(default_factory=list)
    deprecated: list[str] = field(default_factory=list)
    constants: list[str] = field(default_factory=list)


def _module_strings(tree: ast.Module) -> dict[str, str]:
    strings = {}
    for node in tree.body:
        target, value = None, None
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign):
            target, value = node.target, node.value
        if isinstance(target, ast.Name) and isinstance(value, ast.Constant) and isinstance(value.value, str):
            strings[target.id] = value.value
    return strings


def _patch_call(node: ast.AST) -> str | None:
    if not isinstance(node, ast.Call):
        return None
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None
    return name if name in _PATCH_FUNCTIONS else None


def patches_in_workflows(folder: Path = WORKFLOWS) -> dict[str, PatchUse]:
    """Every patch name in the workflow code, read from the source (not imported: a module that
    no longer imports still counts). An argument that is neither a string nor a module-level string
    constant of workflows/ is an error, so no patch goes unseen."""
    trees = {path: ast.parse(path.read_text(), filename=str(path)) for path in sorted(folder.rglob("*.py"))}
    strings: dict[str, set[str]] = {}
    for tree in trees.values():
        for name, value in _module_strings(tree).items():
            strings.setdefault(name, set()).add(value)
    uses: dict[str, PatchUse] = {}
    for path, tree in trees.items():
        where = path.relative_to(folder.parent).as_posix()
        for name, value in _module_strings(tree).items():
            if name.endswith("_PATCH"):
                uses.setdefault(value, PatchUse()).constants.append(f"{where}:{name}")
        for node in ast.walk(tree):
            kind = _patch_call(node)
            if kind is None:
                continue
            assert isinstance(node, ast.Call)
            at = f"{where}:{node.lineno}"
            argument = node.args[0] if node.args else None
            if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
                patch = argument.value
            elif isinstance(argument, ast.Name) and len(strings.get(argument.id, ())) == 1:
                patch, = strings[argument.id]
            else:
                raise ValueError(f"{at}: {kind}() takes a string or a module-level string constant "
                                 "of workflows/, so the replay kit can tell which patch it is")
            use = uses.setdefault(patch, PatchUse())
            (use.deprecated if kind == "deprecate_patch" else use.patched).append(at)
    return uses


# --- recording ---------------------------------------------------------------------------------

class _FetchesHistory(Protocol):
    async def fetch_history(self) -> WorkflowHistory: ...


_versions: dict[Path, str] = {}


def _versions_in(folder: Path, manifest: Manifest, manifest_path: Path) -> set[int]:
    names = {path.name for path in folder.glob("*.json")}
    prefix = manifest_key(folder, manifest_path) + "/"
    names |= {Path(key).name for key in (*manifest.histories, *manifest.retired()) if key.startswith(prefix)}
    return {int(m.group(1)) for name in names if (m := _VERSION.match(name))}


def recording_version(folder: Path, manifest: Manifest, manifest_path: Path = MANIFEST) -> str:
    """CMS_HISTORY_VERSION, else the folder's next free version, chosen once per test run so every
    history recorded in one run carries the same prefix."""
    chosen = os.environ.get(VERSION_ENV, "").strip()
    if chosen:
        if not re.fullmatch(r"v\d+", chosen):
            raise ValueError(f"{VERSION_ENV}={chosen!r}: give a version such as v10")
        return chosen
    folder = folder.resolve()
    if folder not in _versions:
        _versions[folder] = f"v{max(_versions_in(folder, manifest, manifest_path), default=0) + 1}"
    return _versions[folder]


def _current_test() -> str:
    # "tests/cases/test_case_paths.py::test_x (call)"
    return os.environ.get("PYTEST_CURRENT_TEST", "").rsplit(" ", 1)[0]


async def record_history(handle: _FetchesHistory, folder: Path, scenario: str, *,
                         manifest: Path = MANIFEST) -> Path | None:
    """With CMS_RECORD_HISTORIES=1, writes the workflow's history (the run `handle` names, or its
    latest) as `<folder>/<version>_<scenario>.json` and lists it in the manifest with its workflow
    type and patch markers. Never replaces a history, nor reuses the name of a retired one.
    Returns the file written, or None when not recording."""
    if os.environ.get(RECORD_ENV) != "1":
        return None
    if _VERSION.match(scenario):
        raise ValueError(f"{scenario!r}: name the scenario only; the version prefix is the recording's")
    listed = load_manifest(manifest)
    version = recording_version(folder, listed, manifest)
    target = folder / f"{version}_{scenario}.json"
    key = manifest_key(target, manifest)
    if target.exists() or key in listed.histories or key in listed.retired():
        newer = max(_versions_in(folder, listed, manifest), default=0) + 1
        raise HistoryAlreadyRecorded(
            f"{key} is already recorded. A recorded history stands for workflows still running on the "
            f"code that wrote it, so it is never replaced: record the new behaviour under a new version, "
            f"e.g. {VERSION_ENV}=v{newer} {RECORD_ENV}=1.")
    history = await handle.fetch_history()
    # Kept in clear: a fixture sealed with this test session's payload keys could never replay again.
    await decode_payloads_in_history(history)
    folder.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(json.loads(history.to_json()), indent=1) + "\n")
    workflow, patches = workflow_type(history), patch_markers(history)
    with manifest.open("a") as out:
        out.write(_toml_entry(key, workflow, patches, _current_test()))
        for patch in sorted(patches - set(listed.patches)):
            out.write(_toml_patch(patch, workflow, date.today()))
    return target


async def decode_payloads_in_history(history: WorkflowHistory) -> None:
    codec = codec_data_converter().payload_codec
    assert codec is not None, "the tests' converter encrypts payloads"
    for event in history.events:
        await decode_payloads_in(event, codec)


@cache
def _manifest_cached() -> Manifest:
    return load_manifest()


@cache
def _history_cached(path: Path) -> WorkflowHistory:
    return read_history(path)


def manifest() -> Manifest:
    """The project's manifest, read once per test run."""
    return _manifest_cached()


def history(path: Path) -> WorkflowHistory:
    """A recorded history, read once per test run."""
    return _history_cached(path)
