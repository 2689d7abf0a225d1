"""What a workflow's refusal says: the ApplicationError type an update was rejected with."""

from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError


def rejection_type(failure: WorkflowUpdateFailedError) -> str | None:
    """The error type the workflow refused an update with (InvalidArgument, FailedPrecondition, ...);
    fails the test when the update failed for any other reason."""
    cause = failure.cause
    assert isinstance(cause, ApplicationError), f"the workflow did not refuse the update: {cause!r}"
    return cause.type
