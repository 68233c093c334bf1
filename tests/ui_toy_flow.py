"""A small served deployment for the browser harness: a typed parameter and a typed pause.

Run as a script (``python tests/ui_toy_flow.py``) with ``PREFECT_API_URL`` pointing at a
server; it serves the deployment ``ui-toy/ui-toy`` until terminated. It checks the UI's two
forms (a pydantic parameter model rendered as a run form, and a ``RunInput`` rendered as
the resume form) apart from OCR, so a failure of the real test can be located.
"""

# No `from __future__ import annotations`: the flow-run process resolves the parameter
# types of this module loaded under another name, and string annotations would not resolve.
from enum import StrEnum

from prefect import flow, get_run_logger
from prefect.flow_runs import pause_flow_run
from prefect.input import RunInput
from pydantic import BaseModel, Field


class Kind(StrEnum):
    ID_CARD = "id_card"
    CLAIM_FORM = "claim_form"


class Batch(BaseModel):
    """Which documents to look at."""

    label: str = Field("morning", max_length=40, description="A name for the batch")
    kind: Kind = Field(Kind.ID_CARD, description="Document type")
    threshold: float = Field(0.85, ge=0.0, le=1.0, description="Confidence threshold")


class Decision(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"


class Verdict(RunInput):
    decision: Decision = Field(description="approve or reject")
    reviewer: str = Field(min_length=1, description="Who decided")
    name: str = Field("", description="The name as printed")


@flow(name="ui-toy")
def ui_toy(batch: Batch = Batch()) -> dict:  # noqa: B008 - a pydantic default is a value
    """Pause for a reviewer's typed answer and return it with the parameters."""
    form = Verdict.with_initial_data(description="## Check the name\n\n- name: confidence 0.62",
                                     name="李四")
    answer = pause_flow_run(wait_for_input=form, timeout=600, poll_interval=1)
    get_run_logger().info("answer received")
    return {"batch": batch.model_dump(mode="json"), "answer": answer.model_dump(mode="json")}


if __name__ == "__main__":
    ui_toy.serve(name="ui-toy", print_starting_message=False)
