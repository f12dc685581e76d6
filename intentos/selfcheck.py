"""The planner's checks of a valid-looking reply that validation cannot make, for one stage of planning.

Validation knows the table; these know the request: what it says, what was found for it, which
examples were shown. Each finding is a repair problem like any other:
- values borrowed from a worked example (`intentos.borrowed`), every reply;
- a plan that only hands the request back (`intentos.asking`), once a stage; the repairs that follow
  get a grammar without ask and say;
- a destructive plan for a request to destroy a whole kind of thing, "delete all my files"
  (`intentos.wholesale`); else an entity the request names that the plan leaves out (`intentos.overlooked`),
  and a plan that only looks things up when the request names an action (`intentos.undone`); once a stage,
  but a plural's found items used only partly are told again while what the plan leaves out changes;
- a plan that acts on one of several contacts, notes or tasks the request fits equally ("Chris" with two
  Chrises: `intentos.ambiguous`), once a stage; its question is the plan when no valid one comes;
- a literal date the request does not name when it names days ("tomorrow": `intentos.misdated`), once a stage;
  so is such a day that an acting step took from a found thing, as the dry run shows (`after_running`);
- a message that copies the text of a found item the request is not about (`intentos.copied`), once a stage;
- a plan for a request with a condition ("if you can't find it, tell me") that neither tests nor reads first
  (`intentos.conditional`), once, in the first stage;
- a plan that does not refuse a request whose action no function takes ("order me a taxi": `intentos.unserved`),
  once a stage; and for one that some function takes, a plan that only refuses after a dry run failed
  (`intentos.gaveup`), once a stage;
- on a plain function-calling table (no function returns anything), a call of a function that shares no
  word with the request, or whose values the request does not give (`intentos.unasked`), once a stage for
  each function, which then leaves the grammar for the stage; and, where the backend can weigh answers, a
  call the model itself, asked apart, judges to give something other than what is asked (`intentos.misfit`),
  told and left out of the grammar the same way.
"Once a stage": a repair that does the same again stands, since the request may really want it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from intentos.ambiguous import Tie, ambiguous
from intentos.asking import TALKING, Echo, echoes
from intentos.backends.base import Weighing
from intentos.borrowed import borrowed
from intentos.conditional import conditional
from intentos.copied import copied
from intentos.examples import Example
from intentos.gaveup import gave_up
from intentos.grounding import Grounded
from intentos.misdated import NamedDays, misdated, misdated_found
from intentos.misfit import misfit
from intentos.overlooked import PARTLY, overlooked
from intentos.table import FunctionTable
from intentos.unasked import unasked
from intentos.undone import UNANSWERED, undone
from intentos.unserved import unserved
from intentos.validation import Problem
from intentos.wholesale import confirms_wholesale, wholesale, wholesale_refusal
from intentos.workflow import Workflow

# The once-a-stage checks, by what they remember (wholesale, overlooked and undone speak as one).
_ECHO, _REMINDED, _AMBIGUOUS, _MISDATED, _CONDITIONAL, _UNSERVED, _GAVE_UP, _COPIED = (
    "echo", "reminded", "ambiguous", "misdated", "conditional", "unserved", "gave_up", "copied")
_MISDATED_FOUND = "misdated_found"


class SelfCheck:
    """The checks for one request, with what they remember between its replies."""

    def __init__(self, intent: str, shown: FunctionTable, examples: list[Example], grounded: list[Grounded],
                 sources: str, *, plain: bool = False, days: NamedDays | None = None,
                 unserved_verb: str | None = None, weigher: Weighing | None = None) -> None:
        """`plain`: the table's functions return nothing (plain function calling); `days`: the days the
        request names; `unserved_verb`: the request's action, when no function takes it; `weigher`: the
        backend, when it can weigh answers (plain tables only)."""
        self.intent = intent
        self.shown = shown
        self.examples = examples
        self.grounded = grounded
        self.sources = sources  # all the text the request offers the model: where a plan's values may come from
        self.echo: Echo | None = None  # the last reply's echo of the request, if it was one
        self.plain = plain
        self.days = days or NamedDays([], [])
        self.unserved_verb = unserved_verb
        self.weigher = weigher
        self.dry_failure: str | None = None  # the last plan's dry run's first problem, once one failed
        self.question: str | None = None  # what to ask when a plan picked one of several and no valid plan came
        self.refusal: str | None = None  # why to decline when a plan destroyed a whole kind and no valid plan came
        self._told: set[str] = set()  # the once-a-stage checks that spoke in this stage
        self._banned: set[str] = set()
        self._unasked_told: set[str] = set()  # the plain calls told as not asked for, in this stage
        self._partly_told: set[str] = set()  # the problems told of a plural's items used only partly
        self._schemas: dict[tuple[frozenset[str], bool], dict[str, Any]] = {}

    def problems(self, workflow: Workflow, ends_stage: bool, last: bool = False) -> list[Problem]:
        """What is wrong with a reply that parsed and validated; `ends_stage`: it ends in agent.observe
        (a later stage may still use what it leaves out); `last`: no repair follows, so only what must be
        told is (a problem then means no plan)."""
        found = borrowed(workflow, self.examples, self.sources)
        self.echo = None if _ECHO in self._told else echoes(workflow, self.intent, self.shown)
        if self.echo is not None:
            self._told.add(_ECHO)
            found += self.echo.problems
        if not ends_stage and _REMINDED in self._told:
            found += [] if last else self._partly_again(workflow)
            if self.refusal is not None:
                found += confirms_wholesale(workflow, self.intent)
        elif not ends_stage:
            reminded = self._once(_REMINDED, lambda: self._wholesale(workflow) or (
                overlooked(workflow, self.intent, self.grounded, self.shown)
                + undone(workflow, self.intent, self.shown)))
            # A question's plan that looks the answer up but does not say it is better shown than none.
            found += [p for p in reminded if not (last and p.code == UNANSWERED)]
            self._partly_told |= {p.message for p in reminded if p.code == PARTLY}
        found += self._once(_AMBIGUOUS, lambda: self._asking(ambiguous(workflow, self.intent, self.grounded,
                                                                        self.shown)))
        found += self._once(_MISDATED, lambda: misdated(workflow, self.intent, self.days))
        if not ends_stage:
            if not self.plain:  # a plain table has no check or stage to offer ("compute x if y is 0.8": a value)
                found += self._once(_CONDITIONAL, lambda: conditional(workflow, self.intent))
            found += self._once(_UNSERVED, lambda: unserved(workflow, self.unserved_verb))
            found += self._once(_COPIED, lambda: copied(workflow, self.intent, self.grounded, self.shown))
            if self.unserved_verb is None:
                found += self._once(_GAVE_UP, lambda: gave_up(workflow, self.dry_failure, self.shown))
        if self.plain and not found:
            found += self._unasked(workflow) or self._misfit(workflow)
        return found

    def after_running(self, workflow: Workflow, results: dict[str, Any]) -> list[Problem]:
        """What a plan's dry run shows wrong that the plan alone did not: a day an acting step took from a found
        thing where the request names another (`intentos.misdated`), once a stage."""
        return self._once(_MISDATED_FOUND, lambda: misdated_found(workflow, results, self.intent, self.days,
                                                                  self.shown))

    def _wholesale(self, workflow: Workflow) -> list[Problem]:
        """The problem of destroying a whole kind of thing; its refusal is kept for when no valid plan comes."""
        found = wholesale(workflow, self.intent, self.shown)
        if found:
            self.refusal = wholesale_refusal(self.intent)
        return found

    def _unasked(self, workflow: Workflow) -> list[Problem]:
        """The calls not asked for, each told once a stage and then left out of the grammar for the stage."""
        told = [p for p in unasked(workflow, self.intent, self.shown)
                if workflow.states[p.state].call not in self._unasked_told]
        calls = {workflow.states[p.state].call for p in told}
        self._unasked_told |= calls
        self.ban(calls)
        return told

    def _misfit(self, workflow: Workflow) -> list[Problem]:
        """The calls the model judges to miss what is asked, each told once a stage (unasked or misfit) and then
        left out of the grammar for the stage."""
        if self.weigher is None:
            return []
        told = misfit(workflow, self.intent, self.shown, self.weigher, skip=self._unasked_told)
        calls = {workflow.states[p.state].call for p in told}
        self._unasked_told |= calls
        self.ban(calls)
        return told

    def _partly_again(self, workflow: Workflow) -> list[Problem]:
        """A plural's items the plan still uses only some of, told again when what it leaves out changed: a
        repair that is told to add the others may drop the one it had."""
        again = [p for p in overlooked(workflow, self.intent, self.grounded, self.shown)
                 if p.code == PARTLY and p.message not in self._partly_told]
        self._partly_told |= {p.message for p in again}
        return again

    def _once(self, check: str, problems: Callable[[], list[Problem]]) -> list[Problem]:
        """The problems of `check`, unless it spoke already in this stage."""
        if check in self._told:
            return []
        found = problems()
        if found:
            self._told.add(check)
        return found

    def _asking(self, ties: list[Tie]) -> list[Problem]:
        """The ties' problems; the first one's question is kept for when no valid plan comes."""
        if ties:
            self.question = ties[0].question()
        return [tie.problem() for tie in ties]

    def schema(self, schema: dict[str, Any] | None) -> dict[str, Any] | None:
        """The schema for the next reply: without the banned functions (`ban`), and after an echo without ask
        and say, call written first (a state the model had named "ask" went on to agent.say, then to a
        refusal)."""
        echoed = _ECHO in self._told
        banned = self._banned | (set(TALKING) if echoed else set())
        if schema is None or not banned:
            return schema
        key = (frozenset(banned), echoed)
        if key not in self._schemas:
            kept = self.shown.subset([n for n in self.shown.functions if n not in banned])
            self._schemas[key] = kept.workflow_schema(call_first=echoed, references=not self.plain)
        return self._schemas[key]

    def ban(self, calls: set[str]) -> None:
        """Leave `calls` out of the next replies' grammar, for this stage: a repair that wrote a plan whose
        lookups found nothing again word for word gets a grammar that cannot (a small model repeats itself,
        even a little warmer)."""
        self._banned |= {c for c in calls if c in self.shown}

    def new_stage(self, observed: str) -> None:
        """A stage ran: its results are sources too, and each once-a-stage check may speak again."""
        self.sources += "\n" + observed
        self.echo = None
        # Each once-a-stage check may speak again, but the condition one: this stage has seen the data.
        self._told = {_CONDITIONAL}
        self._banned = set()
        self.dry_failure = None
        self._unasked_told = set()
        self._partly_told = set()
