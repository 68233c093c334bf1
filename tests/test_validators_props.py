"""Property tests: no field values, however odd, make a rule or the runner raise.

Values are drawn from junk text and from near-misses of every normal form (dates,
ID numbers, amounts, capitals), so that the deep branches of the rules are reached,
not only the "unreadable" exits.
"""

from __future__ import annotations

import datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain import gb11643
from domain.models import CheckResult, DocType
from validators.fields import add_years
from validators.lookup import InMemoryLookup
from validators.registry import RuleContext, default_registry, run_rules
from validators.rules._samples import BACK, BACK_YOUNG, CLAIM, FRONT, STANDARD_ID, STANDARD_ID_15
from validators.rules.claim_form import RECOMMENDED_FIELDS, REQUIRED_FIELDS

REGISTRY = default_registry()
RULES = list(REGISTRY)
FIELD_NAMES = sorted(
    {name for rule in RULES for name in rule.reads}
    | set(REQUIRED_FIELDS)
    | set(RECOMMENDED_FIELDS)
    | {
        "name",
        "sex",
        "ethnicity",
        "birth_date",
        "address",
        "id_number",
        "issuing_authority",
        "valid_from",
        "valid_until",
    }
)
SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def id_numbers(draw) -> str:
    region = draw(
        st.sampled_from(["110105", "110118", "119999", "810000", "830000", "990000", "000000"])
    )
    birth = draw(st.dates(datetime.date(1800, 1, 1), datetime.date(2100, 12, 31)))
    body = f"{region}{birth:%Y%m%d}{draw(st.integers(0, 999)):03d}"
    if draw(st.booleans()):
        return body[:6] + body[8:]  # a 15-digit form
    check = (
        gb11643.calc_check_digit(body)
        if draw(st.booleans())
        else draw(st.sampled_from("0123456789Xx"))
    )
    return body + check


dates = st.dates(datetime.date(1, 1, 1), datetime.date(9999, 12, 31)).map(lambda d: d.isoformat())
near_dates = st.from_regex(r"\A[0-9]{4}-[0-9]{2}-[0-9]{2}\Z")
amounts = st.decimals(min_value=0, max_value=10**13, places=2, allow_nan=False).map(str)
capitals = st.text(alphabet="零壹贰叁肆伍陆柒捌玖拾佰仟万亿元角分整人民币", max_size=16)
VALUES = st.one_of(
    st.none(),
    st.text(max_size=30),
    st.sampled_from(["", " ", "长期", "男", "女", "本人", "汉", "0", "-1", "9" * 40]),
    # the edges of the calendar, where date arithmetic overflows
    st.sampled_from(
        [
            "0001-01-01",
            "0001-03-31",
            "9999-12-31",
            "9999-02-28",
            "2000-02-29",
            "0001-01-01T00:00",
            "2024-02-29",
        ]
    ),
    dates,
    near_dates,
    id_numbers(),
    amounts,
    capitals,
    st.from_regex(r"\A1[0-9]{10}\Z"),
    st.from_regex(r"\A[0-9]{12,22}\Z"),
)
RANDOM_FIELDS = st.dictionaries(
    st.sampled_from(FIELD_NAMES) | st.text(max_size=8), VALUES, max_size=len(FIELD_NAMES)
)


@st.composite
def mutated_samples(draw) -> dict:
    """A sample document with some fields replaced: mostly coherent, so deep branches run."""
    base = draw(
        st.sampled_from([FRONT, {**BACK_YOUNG}, {**BACK, "birth_date": "1949-12-31"}, CLAIM])
    )
    changes = draw(st.dictionaries(st.sampled_from(sorted(base)), VALUES, max_size=3))
    return {**base, **changes}


@st.composite
def coherent_backs(draw) -> dict:
    """A card back whose period has a legal length, at any point of the calendar."""
    valid_from = draw(
        st.dates(datetime.date(1900, 1, 1), datetime.date(2100, 12, 31))
        | st.dates(datetime.date(1, 1, 1), datetime.date(1, 12, 31))  # calendar edges
        | st.dates(datetime.date(9979, 1, 1), datetime.date(9999, 12, 31))
    )
    years = draw(st.sampled_from([5, 10, 20, None]))
    until = "长期" if years is None else add_years(valid_from, years).isoformat()
    birth = draw(st.dates(max_value=valid_from) | st.dates())
    return {
        "valid_from": valid_from.isoformat(),
        "valid_until": until,
        "birth_date": birth.isoformat(),
    }


FIELDS = RANDOM_FIELDS | mutated_samples() | coherent_backs()
TODAYS = st.dates(datetime.date(1, 1, 1), datetime.date(9999, 12, 31)) | st.sampled_from(
    [datetime.date.min, datetime.date.max, datetime.date(2025, 6, 1)]
)


@st.composite
def lookups(draw):
    """In-memory systems whose records hold whatever values, keyed so that they are found."""
    record = st.dictionaries(
        st.sampled_from(
            [
                "id_number",
                "name",
                "birth_date",
                "status",
                "start_date",
                "end_date",
                "policy_number",
                "claim_id",
                "amount",
                "accident_date",
            ]
        ),
        VALUES,
    )
    records = draw(st.lists(record, max_size=3))
    number = draw(id_numbers())
    policy, accident = CLAIM["policy_number"], CLAIM["accident_date"]
    return InMemoryLookup(
        customers=[{**r, "id_number": key} for r in records for key in (number, STANDARD_ID)]
        + records,
        insured=[{**r, "id_number": STANDARD_ID_15} for r in records] + records,
        policies=[{**r, "policy_number": policy} for r in records] + records,
        claims=[{**r, "policy_number": policy, "accident_date": accident} for r in records]
        + records,
    )


def _check(output) -> None:
    results = [output] if isinstance(output, CheckResult) else list(output)
    assert all(isinstance(r, CheckResult) for r in results)


@SETTINGS
@given(fields=FIELDS, today=TODAYS, lookup=st.none() | lookups())
def test_no_rule_raises(fields, today, lookup) -> None:
    ctx = RuleContext(today=today, lookup=lookup)
    for rule in RULES:
        _check(rule.func(fields, ctx))  # the rule itself, not the runner's safety net


@SETTINGS
@given(
    doc_type=st.sampled_from(list(DocType)),
    fields=FIELDS,
    today=TODAYS,
    lookup=st.none() | lookups(),
)
def test_run_rules_never_crashes_a_rule(doc_type, fields, today, lookup) -> None:
    results = run_rules(doc_type, fields, ctx=RuleContext(today=today, lookup=lookup))
    assert [r.message for r in results if r.details.get("crashed")] == []
    assert {r.rule for r in results} <= {rule.name for rule in REGISTRY.rules_for(doc_type)}


@SETTINGS
@given(number=id_numbers(), doc_type=st.sampled_from([DocType.ID_CARD_FRONT, DocType.CLAIM_FORM]))
def test_no_message_carries_an_id_number(number, doc_type) -> None:
    fields = {"id_number": number, "insured_id_number": number}
    for result in run_rules(doc_type, fields, ctx=RuleContext(lookup=InMemoryLookup())):
        assert gb11643.compact(number) not in result.message + str(result.details)
