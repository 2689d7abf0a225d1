"""The baseline of the workflow benchmarks: a bare workflow that runs one activity. In its own
module, with nothing else imported, so the workflow sandbox loads it as cheaply as possible."""

from datetime import timedelta

from temporalio import activity, workflow


@activity.defn
async def bare_activity(n: int) -> int:
    return n


@workflow.defn(name="BareWorkflow")
class BareWorkflow:
    @workflow.run
    async def run(self, n: int) -> int:
        return await workflow.execute_activity(bare_activity, n, start_to_close_timeout=timedelta(seconds=30))
