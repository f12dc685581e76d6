"""Requests whose action no installed function takes (intentos.unserved), on the built-in table."""

from __future__ import annotations

from pydantic import BaseModel

from intentos.app import App
from intentos.function import Effect, function
from intentos.table import FunctionTable
from intentos.unserved import leading_verbs, unserved_verb

TABLE = FunctionTable.discover()


class PrintArgs(BaseModel):
    path: str


class Printed(BaseModel):
    pages: int


class PrinterApp(App):
    name = "printer"
    description = "paper copies of files"

    @function(Effect.EXTERNAL)
    def print_file(self, args: PrintArgs) -> Printed:
        """Print a file on the default printer."""
        return Printed(pages=1)


def test_the_leading_verb_of_each_sentence_once_openers_are_set_aside() -> None:
    assert leading_verbs("Please order me a pizza") == ["order"]
    assert leading_verbs("Could you please call Ben? Then mail Anna.") == ["call", "mail"]
    assert leading_verbs("I'd like you to print the report") == ["print"]
    assert leading_verbs("My laptop is slow. Just wipe it") == ["my", "wipe"]


def test_actions_no_function_takes_are_unserved_and_desktop_actions_are_not() -> None:
    assert unserved_verb("Pay the water bill from my card", TABLE) == "pay"
    assert unserved_verb("Can you call the garage for me?", TABLE) == "call"
    for intent in ("Send Ben the report", "Call off the offsite", "Remind me to pay the water bill",
                   "Book lunch with Anna on Friday", "Turn the kickoff notes into a task list",
                   "Back up my notes into a zip"):
        assert unserved_verb(intent, TABLE) is None, intent
    # A function that takes the action serves it: a plugin printing files makes "print" one of its words.
    assert unserved_verb("Print the report", TABLE) == "print"
    assert unserved_verb("Print the report", FunctionTable([*TABLE.apps.values(), PrinterApp])) is None
