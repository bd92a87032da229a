"""Route labels out of what real models answer: case, quotes, markdown, JSON, sentences."""

from __future__ import annotations

import pytest

from orchnb.patterns._labels import normalize, parse_confidence, parse_label

LABELS = ["billing", "technical", "account_access"]

CASES = [
    ("billing", "billing"),
    ("Billing", "billing"),
    ("BILLING.", "billing"),
    ('"billing"', "billing"),
    ("'technical'", "technical"),
    ("`billing`", "billing"),
    ("**Technical**", "technical"),
    ("## billing", "billing"),
    ("Label: billing", "billing"),
    ("label = technical", "technical"),
    ("Category: **Billing**\nReason: the user asks about a refund and technical terms.",
     "billing"),
    ("Route: technical (confidence: 0.9)", "technical"),
    ("The best route for this message is billing.", "billing"),
    ("I would classify this as: *technical*", "technical"),
    ('{"label": "billing"}', "billing"),
    ('```json\n{"route": "technical", "confidence": 0.7}\n```', "technical"),
    ('"Technical"\n', "technical"),
    ("Tech", "technical"),
    ("bill", "billing"),
    ("Billing issue", "billing"),
    ("Billing issues.", "billing"),
    ("billing\n\nThe customer also mentions a technical glitch.", "billing"),
    ("Based on the message, this is a billing question. It is not technical.", "billing"),
    ("Account Access", "account_access"),
    ("account-access", "account_access"),
    ("<label>technical</label>", "technical"),
    ("1. billing", "billing"),
    ("Answer: 'technical'", "technical"),
    ("  technical  \n", "technical"),
    ("Classification: TECHNICAL!", "technical"),
]

UNPARSEABLE = [
    "",
    "   ",
    "I am not sure",
    "sales",
    "billing or technical",
    "Could be billing, could be technical.",
    "te",
    "{}",
    "```\n```",
]


@pytest.mark.parametrize(("answer", "label"), CASES)
def test_parse_label_reads_messy_model_answers(answer, label):
    assert parse_label(answer, LABELS) == label


@pytest.mark.parametrize("answer", UNPARSEABLE)
def test_parse_label_gives_none_for_unknown_ambiguous_or_empty_answers(answer):
    assert parse_label(answer, LABELS) is None


def test_aliases_map_other_words_to_labels():
    aliases = {"refund": "billing", "bug": "technical", "ghost": "not_a_route"}
    assert parse_label("Refund", LABELS, aliases) == "billing"
    assert parse_label("Looks like a bug.", LABELS, aliases) == "technical"
    assert parse_label("ghost", LABELS, aliases) is None  # alias to an unknown label is ignored


def test_exact_label_beats_a_longer_label_sharing_its_prefix():
    labels = ["tech", "technical"]
    assert parse_label("tech", labels) == "tech"
    assert parse_label("Technical.", labels) == "technical"


def test_short_prefixes_are_ambiguous_between_labels():
    assert parse_label("acc", ["account", "accounting"]) is None
    assert parse_label("accounti", ["account", "accounting"]) == "accounting"


@pytest.mark.parametrize(("answer", "confidence"), [
    ('{"label": "billing", "confidence": 0.92}', 0.92),
    ("billing (confidence: 85%)", 0.85),
    ("Label: billing\nConfidence: 0.6", 0.6),
    ("technical, 90% confident", 0.9),
    ("billing", None),
    ("confidence: 7000", None),
])
def test_parse_confidence_reads_self_reported_confidence(answer, confidence):
    assert parse_confidence(answer) == confidence


def test_normalize_drops_markup_and_separators():
    assert normalize("**Tech_Support**!") == "tech support"


def test_bare_label_and_field_answers_parse_the_same_with_remembered_tables():
    # The bare-label shortcut and the remembered label table give the full search's answers.
    for _ in range(2):
        assert parse_label("Billing", LABELS) == "billing"
        assert parse_label("label: technical", LABELS) == "technical"
        assert parse_label('{"label": "billing"}', LABELS) == "billing"
        assert parse_label("route = billing", ["billing", "route billing"]) == "billing"


def test_label_tables_are_remembered_per_alias_set():
    assert parse_label("refund", LABELS, {"refund": "billing"}) == "billing"
    assert parse_label("refund", LABELS, {"refund": "technical"}) == "technical"
    assert parse_label("refund", LABELS) is None
