"""What a request rules out does not decide which functions and examples fit it."""

from intentos.backends.replay import ReplayBackend
from intentos.controller import Controller
from intentos.negation import affirmed, negated_words
from intentos.table import FunctionTable


def test_the_word_a_negation_governs_is_left_out() -> None:
    assert negated_words("Write it up as a draft. Don't send it yet") == ["send"]
    assert negated_words("Clean up Downloads without deleting anything, and do not just trash it") == [
        "deleting", "trash"]
    assert negated_words("Don't forget to send Ben the slides") == ["forget"]  # the sending stays
    assert "send" not in affirmed("Please don’t send it yet").lower()
    assert affirmed("Send Ben the slides") == "Send Ben the slides"


def test_a_negated_verb_does_not_make_its_function_fit() -> None:
    planner = Controller(ReplayBackend([]), FunctionTable.discover(), None)
    request = "Put a mail to Ben about the slides in my drafts folder, and don't send it"
    fits = planner.fits(request)
    assert fits["mail.draft"] > fits.get("mail.send_draft", 0.0)
    assert fits["mail.draft"] > fits.get("mail.send", 0.0)
    # Asked to send, sending fits best.
    sending = planner.fits("Send Ben a mail about the slides")
    assert sending["mail.send"] > sending.get("mail.draft", 0.0)
