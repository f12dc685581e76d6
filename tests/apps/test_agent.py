"""The agent's own functions that compute, on a real sandbox: adding up numbers and a text's amounts."""

from __future__ import annotations

import pytest

from intentos.app import Context
from intentos.apps.agent import AgentApp, SumArgs
from intentos.apps.files import FilesApp
from intentos.executor import Executor
from intentos.table import FunctionTable
from intentos.workflow import Workflow


@pytest.mark.parametrize("values, total, count", [
    ([2, 3.5], 5.5, 2),
    ("February receipts: train Berlin-Hamburg EUR 59.90; taxi EUR 23.50; lunch EUR 41.00", 124.4, 3),
    ("rent $1,250.00, a 12 € tip", 1262.0, 2),  # a thousands comma, a currency after the number
    ("coffee 3.50, cake 4,20", 7.7, 2),  # no currency: every number; a decimal comma
    ("2026-02-03 bakery 4.50", 4.5, 1),  # a date's parts are no amounts
    ("nothing to add", 0, 0),
])
def test_sum_adds_numbers_or_the_amounts_a_text_writes(ctx: Context, values, total, count) -> None:
    got = AgentApp(ctx).sum(SumArgs(values=values))
    assert (got.total, got.count) == (total, count)


def test_a_files_text_is_added_up_in_a_plan(ctx: Context) -> None:
    ctx.sandbox.write_text("Documents/receipts.txt", "train EUR 59.90\ntaxi EUR 23.50\n")
    workflow = Workflow.model_validate({"states": [
        {"name": "read", "call": "files.read", "args": {"path": "Documents/receipts.txt"}},
        {"name": "total", "call": "agent.sum", "args": {"values": "${read.result.text}"}},
        {"name": "tell", "call": "agent.say", "args": {"message": "You spent EUR ${total.result.total}"}}]})
    view = Executor(FunctionTable([AgentApp, FilesApp]), ctx, assume_yes=True).run(workflow)
    assert view.status == "done", view.error
    assert view.results["total"] == {"total": 83.4, "count": 2}
