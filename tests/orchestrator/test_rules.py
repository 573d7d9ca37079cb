"""Tier 2: admin-written rules run on RE2 (linear time), through the pipeline and the models."""

import logging
import time

import pytest
from django.core.exceptions import ValidationError

from apps.chat.models import Message
from apps.chat.services import conversation_create
from apps.flows.messages import message_post
from apps.flows.routing import ticket_route
from apps.orchestrator.models import RoutingDecision, RoutingRule
from apps.orchestrator.services import rule_create
from apps.tickets.models import Ticket

pytestmark = pytest.mark.django_db
Tier = RoutingDecision.Tier

# Nested quantifiers: Python's backtracking `re` tries every split of a run of word characters
# that does not end the text (2^(n-1) ways), so 36 letters and a "!" take hours.
CATASTROPHIC_PATTERN = r"^(\w+\s?)+$"
CATASTROPHIC_TEXT = "Iwouldliketoknowwhymyinvoiceisbroken!"


def route(text: str) -> tuple[Ticket, list[RoutingDecision]]:
    """A customer's message opens a ticket, which is routed (no API key: the LLM tiers are off)."""
    conversation = conversation_create().conversation
    message_post(conversation=conversation, text=text, sender=Message.Sender.CUSTOMER)
    ticket = Ticket.objects.get(conversation=conversation)
    ticket_route(ticket=ticket)
    ticket.refresh_from_db()
    return ticket, list(ticket.decisions.order_by("id"))


@pytest.mark.timeout(10)
def test_a_catastrophic_regex_on_a_catastrophic_message_returns_promptly(pools):
    RoutingRule.objects.create(
        name="whole words", kind="regex", pattern=CATASTROPHIC_PATTERN, pool=pools["billing"]
    )
    assert len(CATASTROPHIC_TEXT) > 30
    started = time.monotonic()
    ticket, decisions = route(CATASTROPHIC_TEXT)
    assert time.monotonic() - started < 2
    assert Tier.RULES not in [d.tier for d in decisions]  # no match, and no freeze either
    assert ticket.status == Ticket.Status.IN_REVIEW


def test_the_same_regex_still_routes_a_text_it_matches(pools):
    RoutingRule.objects.create(
        name="whole words", kind="regex", pattern=CATASTROPHIC_PATTERN, pool=pools["billing"]
    )
    ticket, decisions = route("invoice wrong")
    assert (decisions[-1].tier, ticket.pool) == (Tier.RULES, pools["billing"])


@pytest.mark.parametrize(
    ("text", "hit"),
    [
        ("How do I add my VAT number?", True),
        ("vat number: where does it go", True),
        ("my vat-number is missing", False),  # not the phrase
        ("privat number", False),  # not a whole word
        ("my VAT numbers", False),
        ("Ünterschrift and vat number_", False),  # `_` is a word character, as in Python's `re`
    ],
)
def test_keyword_rules_match_whole_words_in_any_case(pools, text, hit):
    RoutingRule.objects.create(
        name="vat", kind="keyword", pattern="VAT number", pool=pools["billing"]
    )
    _ticket, decisions = route(text)
    assert (decisions[-1].tier == Tier.RULES) is hit


def test_keyword_boundaries_count_letters_of_every_script_as_word_characters(pools):
    # RE2's \b and \w are ASCII; the keyword boundary is Unicode, as `re`'s was.
    RoutingRule.objects.create(name="café", kind="keyword", pattern="café", pool=pools["billing"])
    assert route("Bill for the CAFÉ order")[1][-1].tier == Tier.RULES
    assert route("the cafés bill")[1][-1].tier != Tier.RULES
    assert route("écafé bill")[1][-1].tier != Tier.RULES


def test_regex_rules_ignore_case_and_read_unicode_classes(pools):
    RoutingRule.objects.create(
        name="greek", kind="regex", pattern=r"\p{Greek}{3,}|crash(ed)?", pool=pools["technical"]
    )
    assert route("The app CRASHED")[1][-1].tier == Tier.RULES
    assert route("λογαριασμός please")[1][-1].tier == Tier.RULES


def test_a_stored_rule_the_engine_cannot_run_is_skipped_with_one_warning(pools, caplog):
    # Saved before patterns were checked against RE2 (objects.create skips clean()): under
    # `re` the backreference would match "again again" and route every such ticket.
    broken = RoutingRule.objects.create(
        name="doubled words", kind="regex", pattern=r"(\w+) \1", pool=pools["refund"], priority=9
    )
    RoutingRule.objects.create(name="again", pattern="again", pool=pools["technical"], priority=1)
    with caplog.at_level(logging.WARNING, logger="apps.orchestrator.rules"):
        first, decisions = route("It crashed again again")
        second, _ = route("again again it crashed")
    assert (decisions[-1].tier, first.pool) == (Tier.RULES, pools["technical"])
    second.refresh_from_db()
    assert second.pool == pools["technical"]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert str(broken.pk) in warnings[0].getMessage()
    assert "doubled words" in warnings[0].getMessage()


@pytest.mark.parametrize(
    ("pattern", "why"),
    [
        (r"(\w+) \1", "backreferences"),
        (r"(?P<w>\w+) (?P=w)", "backreferences"),
        (r"refund(?! policy)", "lookahead and lookbehind"),
        (r"(?<=order )\d+", "lookahead and lookbehind"),
        (r"(?>a+)b", "atomic groups"),
        (r"refund(", "missing )"),
    ],
)
def test_the_service_refuses_a_pattern_the_engine_cannot_run(pools, pattern, why):
    with pytest.raises(ValidationError) as refused:
        rule_create(name="bad", kind="regex", pattern=pattern, pool=pools["refund"])
    message = " ".join(refused.value.message_dict["pattern"])
    assert "Not a valid regular expression" in message
    assert why in message
    assert not RoutingRule.objects.exists()


def test_the_service_creates_keyword_and_regex_rules(pools):
    keyword = rule_create(name="vat", pattern="VAT number", pool=pools["billing"])
    regex = rule_create(name="refund", kind="regex", pattern=r"refund(ed)?", pool=pools["refund"])
    assert (keyword.kind, regex.kind) == ("keyword", "regex")
    assert RoutingRule.objects.count() == 2
