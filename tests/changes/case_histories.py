"""Recording CaseWorkflow histories with changes of circumstances for the replay test
(test_case_change_replay.py): run the change tests with CMS_RECORD_HISTORIES=1."""

from __future__ import annotations

import json
import os
from pathlib import Path

HISTORIES = Path(__file__).parent / "case_histories"


async def record_case_history(client, workflow_id: str, run_id: str | None, name: str) -> None:
    """Saves one run's history (`run_id`, or the latest run) as case_histories/<name>.json."""
    if os.environ.get("CMS_RECORD_HISTORIES") != "1":
        return
    target = HISTORIES / f"{name}.json"
    if target.exists():
        # A recorded history stands for cases still running on the code that wrote it: record
        # under a new version prefix instead of replacing it.
        return
    history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
    HISTORIES.mkdir(exist_ok=True)
    target.write_text(json.dumps(json.loads(history.to_json()), indent=1) + "\n")
