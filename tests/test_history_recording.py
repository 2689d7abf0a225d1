"""Recording a history for the replay test (tests/helpers/replay.py): only when asked, under the
folder's next version, listed in the manifest with what it covers, and never over a recorded one."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory

from tests.helpers.replay import (
    CHANGE_HISTORIES,
    HistoryAlreadyRecorded,
    load_manifest,
    patch_markers,
    patches_in_workflows,
    read_history,
    record_history,
)

# A ChangeWorkflow run that went through the patch "change-one-decision-write".
SOURCE = CHANGE_HISTORIES / "v2_not_counted.json"


class FinishedWorkflow:
    """Stands in for a WorkflowHandle: what the recorder asks of one."""

    def __init__(self, history: WorkflowHistory) -> None:
        self.history = history
        self.fetched = 0

    async def fetch_history(self) -> WorkflowHistory:
        self.fetched += 1
        return self.history


@pytest.fixture
def project(tmp_path: Path) -> dict[str, Path]:
    manifest = tmp_path / "histories.toml"
    manifest.write_text("# recorded histories\n")
    folder = tmp_path / "changes" / "histories"
    folder.mkdir(parents=True)
    return {"manifest": manifest, "folder": folder}


@pytest.fixture
def recording(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.setenv("CMS_RECORD_HISTORIES", "1")
    monkeypatch.delenv("CMS_HISTORY_VERSION", raising=False)
    return monkeypatch


async def test_nothing_is_recorded_unless_asked(project, monkeypatch) -> None:
    monkeypatch.delenv("CMS_RECORD_HISTORIES", raising=False)
    handle = FinishedWorkflow(read_history(SOURCE))
    assert await record_history(handle, project["folder"], "not_counted", manifest=project["manifest"]) is None
    assert (list(project["folder"].iterdir()), handle.fetched) == ([], 0)
    assert project["manifest"].read_text() == "# recorded histories\n"


async def test_a_recording_goes_under_the_next_version_and_into_the_manifest(project, recording) -> None:
    (project["folder"] / "v1_not_counted.json").write_text(SOURCE.read_text())
    (project["folder"] / "v3_reviewed.json").write_text(SOURCE.read_text())
    written = await record_history(FinishedWorkflow(read_history(SOURCE)), project["folder"], "not_counted",
                                   manifest=project["manifest"])
    assert written == project["folder"] / "v4_not_counted.json"
    assert patch_markers(read_history(project["folder"] / "v4_not_counted.json")) == {"change-one-decision-write"}
    listed = load_manifest(project["manifest"])
    entry = listed.histories["changes/histories/v4_not_counted.json"]
    assert (entry.workflow, entry.patches) == ("ChangeWorkflow", {"change-one-decision-write"})
    assert entry.recorded_by.startswith("tests/test_history_recording.py::test_a_recording_goes_under")
    # A patch the manifest did not know yet is listed too, landed the day of the recording.
    patch = listed.patches["change-one-decision-write"]
    assert (patch.workflow, patch.landed) == ("ChangeWorkflow", date.today())


async def test_every_history_recorded_in_one_run_shares_its_version(project, recording) -> None:
    (project["folder"] / "v2_reviewed.json").write_text(SOURCE.read_text())
    handle = FinishedWorkflow(read_history(SOURCE))
    first = await record_history(handle, project["folder"], "not_counted", manifest=project["manifest"])
    second = await record_history(handle, project["folder"], "reviewed", manifest=project["manifest"])
    assert first is not None and second is not None
    assert (first.name, second.name) == ("v3_not_counted.json", "v3_reviewed.json")
    assert set(load_manifest(project["manifest"]).histories) == {"changes/histories/v3_not_counted.json",
                                                                  "changes/histories/v3_reviewed.json"}


async def test_a_recorded_history_is_never_replaced(project, recording) -> None:
    recording.setenv("CMS_HISTORY_VERSION", "v2")
    recorded = project["folder"] / "v2_not_counted.json"
    recorded.write_text('{"events": []}\n')
    manifest_before = project["manifest"].read_text()
    handle = FinishedWorkflow(read_history(SOURCE))
    with pytest.raises(HistoryAlreadyRecorded, match=r"v2_not_counted.json is already recorded.*CMS_HISTORY_VERSION=v3"):
        await record_history(handle, project["folder"], "not_counted", manifest=project["manifest"])
    assert (recorded.read_text(), project["manifest"].read_text(), handle.fetched) == (
        '{"events": []}\n', manifest_before, 0)


async def test_the_name_of_a_listed_or_retired_history_is_not_taken_again(project, recording) -> None:
    recording.setenv("CMS_HISTORY_VERSION", "v1")
    project["manifest"].write_text(
        '[history."changes/histories/v1_reviewed.json"]\nworkflow = "ChangeWorkflow"\npatches = []\nrecorded_by = "x"\n'
        '[patches.change-one-decision-write]\nworkflow = "ChangeWorkflow"\nlanded = 2026-11-25\n'
        'deprecated = 2027-12-31\nretired = ["changes/histories/v1_not_counted.json"]\nretired_why = "pre-patch"\n')
    for scenario in ("reviewed", "not_counted"):
        with pytest.raises(HistoryAlreadyRecorded):
            await record_history(FinishedWorkflow(read_history(SOURCE)), project["folder"], scenario,
                                 manifest=project["manifest"])
    assert list(project["folder"].iterdir()) == []


async def test_the_scenario_is_named_without_a_version(project, recording) -> None:
    with pytest.raises(ValueError, match="name the scenario only"):
        await record_history(FinishedWorkflow(read_history(SOURCE)), project["folder"], "v2_not_counted",
                             manifest=project["manifest"])


def test_the_manifest_refuses_a_misspelt_key(tmp_path) -> None:
    manifest = tmp_path / "histories.toml"
    manifest.write_text('[history."a/histories/v1_x.json"]\nworkflow = "W"\npatch = []\nrecorded_by = "t"\n')
    with pytest.raises(ValueError, match=r"unknown keys \['patch'\], missing keys \['patches'\]"):
        load_manifest(manifest)


def test_the_patches_are_read_from_the_workflow_source(tmp_path) -> None:
    workflows = tmp_path / "workflows"
    workflows.mkdir()
    (workflows / "names.py").write_text('SHARED = "shared-name"\nNEVER_CALLED_PATCH = "only-a-constant"\n')
    (workflows / "flow.py").write_text(
        "from temporalio import workflow\nfrom temporalio.workflow import patched\nfrom workflows.names import SHARED\n"
        'LOCAL_PATCH = "local"\n'
        "def run():\n"
        '    if workflow.patched(LOCAL_PATCH) or patched("literal") or workflow.patched(SHARED):\n'
        '        workflow.deprecate_patch("old")\n')
    uses = patches_in_workflows(workflows)
    assert set(uses) == {"shared-name", "only-a-constant", "local", "literal", "old"}
    assert (uses["local"].patched, uses["local"].constants) == (["workflows/flow.py:6"], ["workflows/flow.py:LOCAL_PATCH"])
    assert (uses["old"].deprecated, uses["old"].patched) == (["workflows/flow.py:7"], [])
    (workflows / "guess.py").write_text("from temporalio import workflow\nworkflow.patched(name_from_somewhere())\n")
    with pytest.raises(ValueError, match="guess.py:2"):
        patches_in_workflows(workflows)


async def test_a_recorded_file_is_the_history_as_fetched(project, recording) -> None:
    written = await record_history(FinishedWorkflow(read_history(SOURCE)), project["folder"], "not_counted",
                                   manifest=project["manifest"])
    assert written is not None
    assert json.loads(written.read_text()) == json.loads(SOURCE.read_text())
