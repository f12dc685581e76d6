"""The default planning model, for real: Qwen2.5-Coder-1.5B-Instruct plans everyday intents in the demo sandbox.

Real inference on 2 CPU cores at temperature 0 (about half a minute an intent); the intents are not in any eval
suite. What is checked is what the plan does when it runs, not its wording.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from intentos.apps.mail import ListArgs as MailList
from intentos.apps.mail import MailApp
from intentos.apps.tasks import ListArgs, TasksApp
from intentos.backends import make_backend
from intentos.controller import Controller
from intentos.executor import Executor
from intentos.fixture import Fixture
from intentos.table import FunctionTable

OFFICE = Path(__file__).resolve().parents[1] / "workflows" / "fixtures" / "office.yaml"
pytestmark = pytest.mark.model


@pytest.fixture
def office(ctx):
    fixture = Fixture.load(OFFICE)
    ctx.fixed_now = fixture.now
    ctx.timezone = fixture.timezone or ctx.timezone
    fixture.apply(ctx, FunctionTable.discover())
    return ctx


def plan_and_run(ctx, spec: str, intent: str):
    table = FunctionTable.discover()
    resolution = Controller(make_backend(spec), table, ctx).resolve(intent)
    assert resolution.trace.dry_run is not None and resolution.trace.dry_run.status == "done", \
        resolution.trace.dry_run
    view = Executor(table, ctx, confirm=lambda request: True).run(resolution.workflow, intent=intent)
    assert view.status == "done", view
    return resolution


def test_the_default_model_plans_a_reminder_with_its_date(office, default_model) -> None:
    plan_and_run(office, default_model, "Remind me to renew my gym membership next Monday")
    tasks = TasksApp(office).list(ListArgs()).tasks
    gym = [t for t in tasks if "gym" in t.title.lower()]
    assert gym and gym[0].due and gym[0].due.startswith("2026-03-16"), tasks  # the Monday after Tue 2026-03-10


def test_the_default_model_mails_a_person_it_finds_in_the_contacts(office, default_model) -> None:
    resolution = plan_and_run(office, default_model, "Email Ben that the slides are ready")
    assert any("Ben Okafor" in line for line in resolution.trace.grounding)
    outbox = MailApp(office).list(MailList(folder="outbox")).messages
    assert any("ben.okafor@example.com" in m.to for m in outbox), outbox
