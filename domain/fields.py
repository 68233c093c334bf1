"""The fields of each document type, in the order they are shown, and the personal-data
kind of each: one place for what a field is.

>>> FIELDS[DocType.ID_CARD_BACK]
('issuing_authority', 'valid_from', 'valid_until')
>>> personal_kind("insured_id_number"), personal_kind("hospital")
(<PersonalKind.ID_NUMBER: 'id_number'>, None)
>>> sorted(ID_NUMBER_FIELDS)
['id_number', 'insured_id_number']
>>> field_family("claimant_name"), field_family("valid_until"), field_family("nope")
(<FieldFamily.NAME: 'name'>, <FieldFamily.DATE: 'date'>, None)
"""

from __future__ import annotations

from enum import StrEnum

from domain.models import DocType

__all__ = ["FAMILIES", "FIELDS", "ID_NUMBER_FIELDS", "OPTIONAL_FIELDS", "PERSONAL_FIELDS",
           "FieldFamily",
           "PersonalKind", "field_family", "personal_kind"]

#: Every field of each document type (normal forms in ARCHITECTURE.md).
FIELDS: dict[DocType, tuple[str, ...]] = {
    # First: its fields are a front's and a back's, and a field's home type (the last
    # that names it, e.g. for calibration curves) stays the front or the back.
    DocType.ID_CARD_TEMPORARY: ("name", "sex", "ethnicity", "birth_date", "address",
                                "id_number", "valid_from", "valid_until"),
    # Before the claim form, so that a field both name (hospital, bank_name) keeps the
    # claim form as its home type (its calibration curve). items: the itemised lines as
    # printed, "name:amount" joined by ";" in print order, e.g. "西药费:120.50;检查费:80.00";
    # total_amount is the 合计 in figures.
    DocType.MEDICAL_INVOICE: (
        "invoice_kind", "invoice_code", "invoice_number", "invoice_date", "patient_name",
        "hospital", "items", "total_amount", "total_amount_in_words", "insurance_paid",
        "self_paid",
    ),
    DocType.BANK_CARD: ("card_number", "bank_name", "card_holder"),
    DocType.ID_CARD_FRONT: ("name", "sex", "ethnicity", "birth_date", "address", "id_number"),
    DocType.ID_CARD_BACK: ("issuing_authority", "valid_from", "valid_until"),
    DocType.CLAIM_FORM: (
        "policy_number", "insured_name", "insured_id_number", "claimant_name",
        "relationship", "phone", "accident_date", "hospital", "diagnosis", "claim_amount",
        "claim_amount_in_words", "bank_name", "account_name", "account_number",
        "application_date",
    ),
    # A case has no fields of its own: its rules read its documents' fields, named
    # "<role>.<field>" (see validators.rules.case).
    DocType.CLAIM_CASE: (),
    DocType.UNKNOWN: (),
}


#: Fields printed only on some documents of a type: their absence is no reason for a
#: person to look (a bank card without the holder's name, an invoice without 医保统筹).
OPTIONAL_FIELDS: dict[DocType, frozenset[str]] = {
    DocType.MEDICAL_INVOICE: frozenset({"insurance_paid", "self_paid"}),
    DocType.BANK_CARD: frozenset({"card_holder"}),
}


class PersonalKind(StrEnum):
    """What kind of personal data a field holds: it decides how the field is masked."""

    ID_NUMBER = "id_number"
    NAME = "name"
    PHONE = "phone"
    ACCOUNT = "account"
    ADDRESS = "address"


_PERSONAL: dict[str, PersonalKind] = {
    "id_number": PersonalKind.ID_NUMBER,
    "insured_id_number": PersonalKind.ID_NUMBER,
    "name": PersonalKind.NAME,
    "insured_name": PersonalKind.NAME,
    "claimant_name": PersonalKind.NAME,
    "account_name": PersonalKind.NAME,
    "patient_name": PersonalKind.NAME,
    "card_holder": PersonalKind.NAME,
    "card_number": PersonalKind.ACCOUNT,
    "phone": PersonalKind.PHONE,
    "account_number": PersonalKind.ACCOUNT,
    "address": PersonalKind.ADDRESS,
}

#: Fields that carry personal data (masked everywhere outside the store).
PERSONAL_FIELDS: frozenset[str] = frozenset(_PERSONAL)
#: Fields holding a resident identity number (their own review threshold).
ID_NUMBER_FIELDS: frozenset[str] = frozenset(
    n for n, k in _PERSONAL.items() if k is PersonalKind.ID_NUMBER)


def personal_kind(field: str) -> PersonalKind | None:
    """The personal-data kind of a field, or None for a field that is not personal."""
    return _PERSONAL.get(field)


class FieldFamily(StrEnum):
    """What kind of value a field holds, for how far its reading can be trusted: fields of
    one family are read, repaired and go wrong alike (the confidence calibration has a
    curve per family, ``ocr/calibration.py``)."""

    ID_NUMBER = "id_number"
    NAME = "name"
    DATE = "date"
    AMOUNT = "amount"
    NUMBER = "number"
    TEXT = "text"
    CHOICE = "choice"


#: The family of every field of every document type.
FAMILIES: dict[str, FieldFamily] = {
    "id_number": FieldFamily.ID_NUMBER,
    "insured_id_number": FieldFamily.ID_NUMBER,
    "name": FieldFamily.NAME,
    "insured_name": FieldFamily.NAME,
    "claimant_name": FieldFamily.NAME,
    "account_name": FieldFamily.NAME,
    "patient_name": FieldFamily.NAME,
    "card_holder": FieldFamily.NAME,
    "birth_date": FieldFamily.DATE,
    "valid_from": FieldFamily.DATE,
    "valid_until": FieldFamily.DATE,
    "accident_date": FieldFamily.DATE,
    "application_date": FieldFamily.DATE,
    "invoice_date": FieldFamily.DATE,
    "claim_amount": FieldFamily.AMOUNT,
    "claim_amount_in_words": FieldFamily.AMOUNT,
    "total_amount": FieldFamily.AMOUNT,
    "total_amount_in_words": FieldFamily.AMOUNT,
    "insurance_paid": FieldFamily.AMOUNT,
    "self_paid": FieldFamily.AMOUNT,
    "policy_number": FieldFamily.NUMBER,
    "phone": FieldFamily.NUMBER,
    "account_number": FieldFamily.NUMBER,
    "invoice_code": FieldFamily.NUMBER,
    "invoice_number": FieldFamily.NUMBER,
    "card_number": FieldFamily.NUMBER,
    "address": FieldFamily.TEXT,
    "hospital": FieldFamily.TEXT,
    "diagnosis": FieldFamily.TEXT,
    "issuing_authority": FieldFamily.TEXT,
    "bank_name": FieldFamily.TEXT,
    "items": FieldFamily.TEXT,
    "sex": FieldFamily.CHOICE,
    "ethnicity": FieldFamily.CHOICE,
    "relationship": FieldFamily.CHOICE,
    "invoice_kind": FieldFamily.CHOICE,
}


def field_family(field: str) -> FieldFamily | None:
    """The family of a field, or None for a name no document type has."""
    return FAMILIES.get(field)
