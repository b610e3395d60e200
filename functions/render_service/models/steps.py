"""What crosses the workflow's boundaries: the execution state each task reads, what each task
returns into it (see infra/constructs/workflow.py for the paths), and the chunk worker's task.

The producer and the consumer of each payload use the same model.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

RENDER_ID = r"^[A-Za-z0-9-]{1,80}$"


class StepModel(BaseModel):
    # The state machine adds its own keys to the state; a task reads only what it names.
    model_config = ConfigDict(extra="ignore")

    def result(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class SlotResult(StepModel):
    """AcquireSlot, at `$.slot`."""

    acquired: bool
    waitSeconds: int


class OutputResult(StepModel):
    """FinalizeRender, at `$.output`: the finished object, for CompleteRender."""

    key: str
    sizeBytes: int
    durationSeconds: float
    width: int | None = None
    height: int | None = None
    posterKey: str | None = None
    thumbnailKey: str | None = None


class ProgressResult(StepModel):
    """StartRender and PollRender, at `$.progress`."""

    status: Literal["rendering", "done", "made"] = Field(
        description="done: every chunk is made, FinalizeRender joins them. made: StartRender made the "
        "whole output itself (a remux, one chunk), named in `output`, and CompleteRender comes next."
    )
    progress: int = Field(ge=0, le=100)
    waitSeconds: int = Field(ge=0, description="0: poll at once (nothing is left to render).")
    output: OutputResult | None = None

    def result(self) -> dict[str, Any]:
        # Only a made render names its output: the console's state shows no `output: null` per poll.
        return self.model_dump(mode="json", exclude={"output"} if self.output is None else None)


class CatchError(StepModel):
    """What a Catch puts at `$.error`: the error name Lambda reported and its cause (JSON, usually)."""

    Error: str = ""
    Cause: str | None = None


class FailureResult(StepModel):
    """RecordFailure, at `$.failure`: retry the whole render after `waitSeconds`, or it has failed.

    On a final failure the state machine's Fail state shows `code` and `message` in the console.
    """

    retry: bool
    waitSeconds: int = Field(1, ge=1)
    attempt: int = 0
    code: str
    message: str


class StepInput(StepModel):
    """The execution's state: its input plus what earlier tasks added."""

    renderId: str = Field(pattern=RENDER_ID)
    userId: str
    slot: SlotResult | None = None
    progress: ProgressResult | None = None
    output: OutputResult | None = None
    error: CatchError | None = None


class ChunkTask(StepModel):
    """One chunk of one attempt of a render, as StartRender/PollRender invoke the chunk worker."""

    renderId: str = Field(pattern=RENDER_ID)
    renderAttempt: int = Field(1, ge=1)
    index: int = Field(ge=0)
    attempt: int = Field(ge=1)
