"""Synthetic documents the built-in rules' examples start from.

All people here are invented. 11010519491231002X is the worked example of GB 11643-1999;
the other numbers were generated with valid check digits for these examples.
"""

from __future__ import annotations

from validators.lookup import InMemoryLookup

STANDARD_ID = "11010519491231002X"  # 北京市朝阳区, 1949-12-31, female
STANDARD_ID_15 = "110105491231002"

FRONT = {
    "name": "李秀英",
    "sex": "女",
    "ethnicity": "汉",
    "birth_date": "1949-12-31",
    "address": "北京市朝阳区建国路88号院3号楼2单元101室",
    "id_number": STANDARD_ID,
}

# Issued in 2016 at 66: a card valid for life (长期).
BACK = {
    "issuing_authority": "北京市公安局朝阳分局",
    "valid_from": "2016-03-01",
    "valid_until": "长期",
}

# A man born 2000-05-01 whose card was issued at 18, for 10 years.
BACK_YOUNG = {
    "issuing_authority": "北京市公安局朝阳分局",
    "valid_from": "2018-06-01",
    "valid_until": "2028-06-01",
    "birth_date": "2000-05-01",
}

CLAIM = {
    "policy_number": "P2025000123",
    "insured_name": "李秀英",
    "insured_id_number": STANDARD_ID,
    "claimant_name": "李秀英",
    "relationship": "本人",
    "phone": "13800138000",
    "accident_date": "2025-03-10",
    "hospital": "北京协和医院",
    "diagnosis": "桡骨远端骨折",
    "claim_amount": "12345.67",
    "claim_amount_in_words": "壹万贰仟叁佰肆拾伍元陆角柒分",
    "bank_name": "中国工商银行",
    "account_name": "李秀英",
    "account_number": "6222020200112233446",  # passes Luhn
    "application_date": "2025-03-20",
}

# What the downstream systems know about the same person. The claims system still
# stores her under the 15-digit number of her first-generation card.
LOOKUP = InMemoryLookup(
    customers=[
        {"customer_id": "C0001", "id_number": STANDARD_ID, "name": "李秀英", "birth_date": "1949-12-31"},
    ],
    insured=[
        {"insured_id": "I0001", "policy_number": "P2025000123", "id_number": STANDARD_ID_15,
         "name": "李秀英", "birth_date": "1949-12-31"},
    ],
    policies=[
        {"policy_number": "P2025000123", "status": "in_force", "start_date": "2025-01-01",
         "end_date": "2025-12-31", "insured_id_number": STANDARD_ID},
        {"policy_number": "P2023000077", "status": "lapsed", "start_date": "2023-01-01",
         "end_date": "2023-12-31", "insured_id_number": STANDARD_ID},
        {"policy_number": "P2025000999", "status": "void", "start_date": "2025-01-01",
         "end_date": "2025-12-31", "insured_id_number": STANDARD_ID},
    ],
    claims=[
        {"claim_id": "CL0001", "policy_number": "P2025000123", "accident_date": "2025-01-15",
         "amount": "800.00", "status": "paid"},
    ],
)  # fmt: skip

# The same systems after this claim was already registered once.
LOOKUP_WITH_DUPLICATE = InMemoryLookup(
    customers=LOOKUP.customers,
    insured=LOOKUP.insured,
    policies=LOOKUP.policies,
    claims=[
        *LOOKUP.claims,
        {"claim_id": "CL0002", "policy_number": "P2025000123", "accident_date": "2025-03-10",
         "amount": "12345.67", "status": "open"},
    ],
)  # fmt: skip

# The core system knows the customer under a different name and birth date.
LOOKUP_DISAGREEING = InMemoryLookup(
    customers=[
        {"customer_id": "C0001", "id_number": STANDARD_ID, "name": "李秀兰", "birth_date": "1949-12-30"},
    ],
    insured=[
        {"insured_id": "I0001", "policy_number": "P2025000123", "id_number": STANDARD_ID_15,
         "name": "李秀兰", "birth_date": "1949-12-31"},
    ],
)  # fmt: skip

EMPTY_LOOKUP = InMemoryLookup()

# --- medical invoice (begin) ---
# 李秀英's outpatient invoice for the claim above: the items add up to the total, the
# payments to no more than it.
INVOICE = {
    "invoice_kind": "门诊",
    "invoice_code": "11010125",
    "invoice_number": "0012345678",
    "invoice_date": "2025-03-12",
    "patient_name": "李秀英",
    "hospital": "北京协和医院",
    "items": "西药费:120.50;检查费:80.00",
    "total_amount": "200.50",
    "total_amount_in_words": "贰佰元伍角",
    "insurance_paid": "120.30",
    "self_paid": "60.20",
}
# --- medical invoice (end) ---
