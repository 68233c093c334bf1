"""Plain-dict answers for the command line: ``backoffice id-number NUMBER... --json``.

The CLI lives in the core (typer); this module only turns validator knowledge into
JSON-ready dicts so the command stays a thin loop over its arguments.

>>> import datetime, json
>>> info = describe_id_number('110105491231002', today=datetime.date(2025, 6, 1))
>>> {k: info[k] for k in ('valid', 'kind', 'normalized', 'birth_date', 'sex')}
{'valid': True, 'kind': '15', 'normalized': '11010519491231002X', 'birth_date': '1949-12-31', 'sex': '女'}
>>> info['region']
{'code': '110105', 'province': '北京市', 'county': '朝阳区'}
>>> [(c['rule'], c['passed']) for c in info['checks']]
[('id_number.format', True), ('id_number.checksum', False), ('id_number.components', True)]
>>> info['checks'][1]['severity'], info['checks'][1]['message']
('info', 'skipped: 15-digit numbers have no check digit')
>>> bad = describe_id_number('110105194912310021', today=datetime.date(2025, 6, 1))
>>> bad['valid'], bad['kind'], bad['normalized'], bad['checks'][1]['message']
(False, '18', None, 'ID number check digit is wrong (misread or mistyped character?)')
>>> describe_id_number('hello')['kind'] is None
True
>>> _ = json.dumps(info, ensure_ascii=False)
"""

from __future__ import annotations

import datetime
from typing import Any

from domain.models import CheckResult, Severity
from validators.rules.id_number import examine_id_number, number_checks

__all__ = ["describe_id_number"]


def describe_id_number(text: str, today: datetime.date | None = None) -> dict[str, Any]:
    """Explain one identity number: validity, kind, 18-digit form, what it encodes, checks.

    Keys (always all of them): ``input``, ``valid``, ``kind`` ('18', '15', 'hk_mo_tw'
    or None when the shape is not an identity number's), ``normalized`` (the 18-digit
    form when valid, else None), ``birth_date`` (ISO), ``sex`` (男/女), ``region``
    (``{code, province, county}``), ``checks`` (CheckResult dicts). The decoded fields
    are given whenever they can be read, even for an invalid number (a wrong check
    digit does not change the birth date): ``valid`` says whether to trust them.
    15-digit numbers are accepted here (old records), unlike on a card front.
    """
    today = today or datetime.date.today()
    facts = examine_id_number(text, today=today)
    checks = []
    for name, result in number_checks(facts, allow_15=True).items():
        update: dict[str, Any] = {"rule": f"id_number.{name}"}
        if "fields" not in result.model_fields_set:
            update["fields"] = ["id_number"]
        if "severity" not in result.model_fields_set:
            update["severity"] = Severity.ERROR
        checks.append(_as_dict(result.model_copy(update=update)))
    region = facts.region
    return {
        "input": text,
        "valid": facts.valid,
        "kind": facts.kind,
        "normalized": facts.id18,
        "birth_date": facts.birth_date.isoformat() if facts.birth_date else None,
        "sex": facts.sex,
        "region": region._asdict() if region is not None else None,
        "checks": checks,
    }


def _as_dict(result: CheckResult) -> dict[str, Any]:
    return result.model_dump(mode="json")
