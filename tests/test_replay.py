"""Every recorded workflow history replays against the current code, and tests/histories.toml says
truly what each one covers.

A change to a workflow that would break a running case, change or payment fails here: put it
behind `workflow.patched(...)` and record new histories next to the old ones (README, "Changing a
workflow that cases are running"). Run one history with
`pytest "tests/test_replay.py::test_recorded_history_replays[changes/histories/v2_reviewed]"`."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.worker import Replayer

from cms.worker_catalog import all_workflows
from tests.helpers.codec import codec_data_converter
from tests.helpers.replay import (
    LONGEST_CASE_RUN,
    TESTS,
    history,
    history_files,
    manifest,
    manifest_key,
    patch_markers,
    patches_in_workflows,
    workflow_type,
)

HISTORIES = history_files()


def history_id(path: Path) -> str:
    return manifest_key(path).removesuffix(".json")


@pytest.mark.parametrize("path", HISTORIES, ids=history_id)
async def test_recorded_history_replays(path: Path) -> None:
    entry = manifest().histories.get(manifest_key(path))
    assert entry is not None, f"{manifest_key(path)} is not in tests/histories.toml"
    recorded = history(path)
    assert workflow_type(recorded) == entry.workflow, "the manifest names another workflow"
    # The workflows the worker registers, decoding as the worker does.
    replayer = Replayer(workflows=all_workflows(), data_converter=codec_data_converter())
    result = await replayer.replay_workflow(recorded, raise_on_replay_failure=False)
    assert result.replay_failure is None, f"{path.name}: {result.replay_failure}"


def test_there_are_histories_in_every_folder() -> None:
    folders = {path.parent.relative_to(TESTS).as_posix() for path in HISTORIES}
    assert folders >= {"cases/histories", "changes/case_histories", "changes/histories", "payments/histories"}


def test_every_history_file_is_in_the_manifest_and_every_entry_has_its_file() -> None:
    on_disk = {manifest_key(path) for path in HISTORIES}
    listed = set(manifest().histories)
    assert sorted(on_disk - listed) == [], "recorded histories missing from tests/histories.toml"
    assert sorted(listed - on_disk) == [], "tests/histories.toml lists histories that are not there"


def test_the_manifest_claims_exactly_the_patches_and_workflow_in_each_history() -> None:
    wrong = {}
    for path in HISTORIES:
        entry = manifest().histories.get(manifest_key(path))
        recorded = history(path)
        if entry and (entry.patches, entry.workflow) != (patch_markers(recorded), workflow_type(recorded)):
            wrong[entry.file] = {"manifest": (sorted(entry.patches), entry.workflow),
                                 "history": (sorted(patch_markers(recorded)), workflow_type(recorded))}
    assert wrong == {}


def test_every_patch_in_the_workflows_is_listed_with_the_day_it_landed() -> None:
    in_code = set(patches_in_workflows())
    listed = set(manifest().patches)
    assert sorted(in_code - listed) == [], "patches in workflows/ missing from [patches] in tests/histories.toml"
    assert sorted(listed - in_code) == [], "[patches] in tests/histories.toml that workflows/ no longer has"


def test_every_patch_in_the_workflows_is_covered_by_a_history() -> None:
    covered: dict[str, set[str]] = {}
    for entry in manifest().histories.values():
        for patch in entry.patches:
            covered.setdefault(patch, set()).add(entry.workflow)
    uncovered = sorted(set(patches_in_workflows()) - set(covered))
    assert uncovered == [], "record a history that goes through each of these (README)"
    # ... and by histories of the workflow the manifest says the patch belongs to.
    assert {name: {patch.workflow} for name, patch in manifest().patches.items()} == {
        name: workflows for name, workflows in covered.items() if name in manifest().patches}


def test_a_patch_is_deprecated_in_the_code_exactly_when_the_manifest_says_so_and_not_too_soon() -> None:
    uses = patches_in_workflows()
    in_code = sorted(name for name, use in uses.items() if use.deprecated)
    in_manifest = sorted(name for name, patch in manifest().patches.items() if patch.deprecated)
    assert in_code == in_manifest
    for name in in_manifest:
        patch = manifest().patches[name]
        assert patch.deprecated is not None
        assert patch.deprecated - patch.landed >= LONGEST_CASE_RUN, (
            f"{name}: cases started before it landed may still be on their first run")
        assert not uses[name].patched, f"{name}: deprecated, yet still asked with workflow.patched() at {uses[name].patched}"


def test_retired_histories_are_gone() -> None:
    still_there = sorted(manifest().retired() & ({manifest_key(path) for path in HISTORIES} | set(manifest().histories)))
    assert still_there == []
    for patch in manifest().patches.values():
        assert bool(patch.retired) <= bool(patch.deprecated and patch.retired_why), (
            f"{patch.name}: histories are retired only with the patch's deprecation, and say why")
