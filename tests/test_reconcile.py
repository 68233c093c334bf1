"""Customer-master reconciliation: every class by hand, the partition property, the job's
CSV and SQL inputs (SQLite, PostgreSQL), the CLI's masking and the Prefect flow."""

from __future__ import annotations

import asyncio
import datetime
import doctest
import json
import re

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from stdnum.exceptions import InvalidChecksum, InvalidComponent, InvalidFormat, InvalidLength

import validators.reconcile as reconcile_module
from domain import gb11643
from validators.reconcile import (
    CLASSES,
    IdStatus,
    Master,
    Outcome,
    Reason,
    describe,
    name_key,
    parse_id_numbers,
    reconcile,
)

TODAY = datetime.date(2025, 6, 1)


def id18(region: str, birth: str, seq: str) -> str:
    body = region + birth + seq
    return body + gb11643.calc_check_digit(body)


def wrong_check(number: str) -> str:
    right = number[17]
    return number[:17] + ("0" if right != "0" else "1")


def master(rows: list[tuple], with_carry: bool = False) -> Master:
    ids, names, births, phones = (list(col) for col in zip(*rows, strict=True)) if rows else \
        ([], [], [], [])
    carry = {"policy_count": [1] * len(ids)} if with_carry else None
    return Master.from_columns(ids, names, births, phones, carry=carry, today=TODAY)


# Core customers (row: number, name, birth date, phone) and what the claims system holds.
LI = id18("110105", "19491231", "002")  # 11010519491231002X
ZHANG = id18("110105", "19800101", "001")
WANG = id18("440301", "19900101", "001")
ZHAO = id18("310101", "19750505", "123")
MAIMAITI = id18("650102", "19660606", "031")
CHEN = id18("320102", "20030303", "044")  # born 2003: no 15-digit form
HU = id18("420106", "19550505", "017")
GUO = id18("420106", "19550505", "019")  # Hu's region and birth date, another seq
SUN = id18("370102", "19881111", "052")
ZHOU = id18("500103", "19720707", "088")
WU = id18("210102", "19610203", "066")
XU = id18("130102", "19830315", "071")
MA = id18("410102", "19920920", "005")
LUO = id18("510104", "19450119", "033")
LUO_TWIN = wrong_check(LUO)  # a second core customer under the same body: a slip
HAN = id18("350102", "19700101", "013")
TIAN = id18("330102", "19680808", "026")
TIAN_2 = id18("330102", "19680808", "028")  # same name/birth/region as Tian, unmatched
FENG = id18("450102", "19590909", "045")
DENG = id18("530102", "19930303", "057")
CAO = id18("610102", "19571212", "069")
PENG = id18("620102", "19641010", "072")

CORE = [
    (LI, "李秀英", "1949-12-31", "13812345678"),
    (ZHANG, "张伟", "1980-01-01", "13900000001"),
    (WANG, "王芳", "1990-01-01", "13900000002"),
    (ZHAO, "赵敏", "1975-05-05", "13900000003"),
    (MAIMAITI, "买买提·艾力", "1966-06-06", ""),
    (CHEN, "陈国华", "2003-03-03", "13900000005"),
    (HU, "胡军", "1955-05-05", ""),
    (GUO, "郭强", "1955-05-05", ""),
    (SUN, "孙丽", "1988-11-11", "13900000008"),
    (ZHOU, "周东", "1972-07-07", "13900000009"),
    (WU, "吴刚", "1961-02-03", ""),
    (XU, "徐红", "1983-03-15", ""),
    (MA, "马超", "1992-09-20", ""),
    (LUO, "罗兰", "1945-01-19", ""),
    (LUO_TWIN, "罗兰", "1945-01-19", ""),
    (HAN, "韩梅", "1970-01-01", "13900000015"),
    (TIAN, "田静", "1968-08-08", ""),
    (TIAN_2, "田静", "1968-08-08", ""),
    (FENG, "冯磊", "1959-09-09", ""),
    (DENG, "邓洁", "1993-03-03", ""),
    (CAO, "曹阳", "1957-12-12", ""),
    (PENG, "彭飞", "1964-10-10", ""),
]


def swap(number: str, p: int) -> str:
    chars = list(number)
    chars[p], chars[p + 1] = chars[p + 1], chars[p]
    return "".join(chars)


def change(number: str, p: int) -> str:
    return number[:p] + str((int(number[p]) + 5) % 10) + number[p + 1:]


CLAIMS = [
    # matched: the 15-digit form and other spellings of the name
    (gb11643.to_15(LI), "李 秀英", "1949-12-31", ""),
    (ZHANG.lower(), "張偉", "1980-01-01", "13900000001"),
    (MAIMAITI, "买买提•艾力", "1966-06-06", "13911111111"),
    (CHEN, "陳國華", "2003-03-03", "13900000005"),
    (gb11643.to_15(ZHOU), "周東\u3000", "1972-07-07", "+86 139-0000-0009"),
    # mismatch: birth date; name; phone
    (WANG, "王芳", "1990-01-02", ""),
    (gb11643.to_15(ZHAO), "赵明", "1975-05-05", ""),
    (HAN, "韩梅", "1970-01-01", "13000000000"),
    # matched_with_typo: check digit, one digit, transposition, across the century gap
    (wrong_check(SUN), "孫麗", "1988-11-11", ""),
    (change(WU, 14), "吴刚", "1961-02-03", ""),
    (swap(XU, 10), "徐红", "1983-03-15", ""),
    (swap(gb11643.to_15(MA), 5), "马超", "1992-09-20", ""),  # 15 digits: region|year swap
    # typo + a birth date that differs: mismatch with id_number_typo
    (change(FENG, 15), "冯磊", "1959-10-09", ""),
    # ambiguous: Hu's claims record entered twice (15 and 18 digits)
    (HU, "胡军", "1955-05-05", ""),
    (gb11643.to_15(HU), "胡军", "1955-05-05", ""),
    # ambiguous: Luo's body is held by two core rows
    (gb11643.to_15(LUO), "罗兰", "1945-01-19", ""),
    # ambiguous: an invalid number whose name + birth + region fit Tian and Tian 2
    (id18("330102", "19680832", "027"), "田静", "1968-08-08", ""),
    # missing_in_core: not a customer; junk numbers (never dropped)
    (id18("110101", "19700707", "011"), "钱进", "1970-07-07", ""),
    ("", "无号码", "1970-07-07", ""),
    ("12345", "短号码", "", ""),
    ("ABCDEFGHIJKLMNOPQR", "乱码", "not a date", "n/a"),
    (change(DENG, 2), "完全不同", "2001-01-01", ""),  # one digit off, nothing else agrees
]
EXPECTED = {
    # (side, row) -> class; sides: c = core, m = claims
    **{("c", i): "matched" for i in (0, 1, 4, 5, 9)},
    **{("m", i): "matched" for i in (0, 1, 2, 3, 4)},
    **{("c", i): "mismatch" for i in (2, 3, 15, 18)},
    **{("m", i): "mismatch" for i in (5, 6, 7, 12)},
    **{("c", i): "matched_with_typo" for i in (8, 10, 11, 12)},
    **{("m", i): "matched_with_typo" for i in (8, 9, 10, 11)},
    **{("c", i): "ambiguous" for i in (6, 13, 14, 16, 17)},
    **{("m", i): "ambiguous" for i in (13, 14, 15, 16)},
    **{("c", i): "missing_in_claims" for i in (7, 19, 20, 21)},
    **{("m", i): "missing_in_core" for i in (17, 18, 19, 20, 21)},
}


@pytest.fixture(scope="module")
def hand_made():
    core, claims = master(CORE), master(CLAIMS, with_carry=True)
    return core, claims, reconcile(core, claims)


def test_module_doctests():
    assert doctest.testmod(reconcile_module).failed == 0


def test_every_hand_made_row_lands_in_its_class(hand_made):
    _core, _claims, result = hand_made
    got = {("c", i): CLASSES[o] for i, o in enumerate(result.core_outcome)}
    got |= {("m", i): CLASSES[o] for i, o in enumerate(result.claims_outcome)}
    assert got == EXPECTED
    counts = result.counts()
    assert sum(c["core_rows"] for c in counts.values()) == len(CORE)
    assert sum(c["claims_rows"] for c in counts.values()) == len(CLAIMS)
    assert set(counts) == set(CLASSES)


def test_reasons_say_which_fields_differ(hand_made):
    _core, claims, result = hand_made
    text = {i: describe(int(result.claims_reason[i]), int(claims.ids.status[i]))
            for i in range(len(CLAIMS))}
    assert text[5] == "birth_date"
    assert text[6] == "name"
    assert text[7] == "phone"
    assert text[8].startswith("id_number_typo(same_body") and "checksum" in text[8]
    assert "one_digit" in text[9]
    assert "transposition" in text[10] and "transposition" in text[11]
    assert text[12].startswith("id_number_typo(one_digit") and "birth_date" in text[12]
    assert result.claims_reason[13] & Reason.DUPLICATE_IN_CLAIMS
    assert result.core_reason[13] & Reason.DUPLICATE_IN_CORE
    assert result.claims_reason[16] & Reason.SEVERAL_CANDIDATES
    assert "invalid_id_number(length)" in text[19]
    assert "invalid_id_number(missing)" in text[18]
    assert "invalid_id_number(format)" in text[20]
    # partners point at each other
    assert result.claims_partner[0] == 0 and result.core_partner[0] == 0
    assert result.core_partner[11] == 10  # Xu's core row ↔ the transposed claims row


def test_check_digit_mismatch_on_the_same_body():
    core = master([(wrong_check(ZHANG), "张伟", "1980-01-01", "")])
    claims = master([(ZHANG, "张伟", "1980-01-01", "")])
    result = reconcile(core, claims)
    assert CLASSES[result.core_outcome[0]] == "mismatch"
    assert describe(int(result.core_reason[0])) == "id_number"


def test_empty_masters():
    result = reconcile(master([]), master([]))
    assert all(c["outcomes"] == 0 for c in result.counts().values())
    only_core = reconcile(master(CORE[:3]), master([]))
    assert only_core.counts()["missing_in_claims"]["core_rows"] == 3


def test_name_keys_fold_spellings():
    assert name_key("買買提‧艾力") == name_key("买买提·艾力") == name_key("买买提.艾力")
    assert name_key("ＺＨＡＮＧ　Ｗｅｉ") == name_key("zhang wei")
    assert name_key("李秀英") != name_key("李秀")


# --- properties ---------------------------------------------------------------------

_STATUS_OF = {InvalidLength: {IdStatus.BAD_LENGTH}, InvalidFormat: {IdStatus.BAD_FORMAT},
              InvalidChecksum: {IdStatus.BAD_CHECKSUM},
              InvalidComponent: {IdStatus.BAD_DATE, IdStatus.FUTURE_DATE, IdStatus.EARLY_DATE,
                                 IdStatus.UNKNOWN_PROVINCE}}
_valid_ids = st.builds(
    lambda region, day, seq: id18(region, day.strftime("%Y%m%d"), f"{seq:03d}"),
    st.sampled_from(["110105", "440301", "650102", "810000", "830000", "119999", "990000"]),
    st.dates(datetime.date(1850, 1, 1), datetime.date(2030, 1, 1)),
    st.integers(0, 999))
# NUL characters are left out: numpy's fixed-width strings drop trailing NULs.
_id_text = st.one_of(
    _valid_ids, _valid_ids.map(lambda n: n[:6] + n[8:17]), _valid_ids.map(wrong_check),
    _valid_ids.map(lambda n: n.lower()), _valid_ids.map(lambda n: n[:6] + " " + n[6:]),
    _valid_ids.map(lambda n: "".join(chr(ord(c) + 0xFEE0) for c in n)),
    st.text("0123456789Xx -", min_size=0, max_size=20),
    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
            max_size=20))


@settings(max_examples=300, deadline=None)
@given(st.lists(_id_text, min_size=1, max_size=8))
def test_id_parsing_agrees_with_cn_ric(values):
    ids = parse_id_numbers(values, today=TODAY)
    for i, value in enumerate(values):
        try:
            number = gb11643.validate(value, today=TODAY)
        except (InvalidLength, InvalidFormat, InvalidChecksum, InvalidComponent) as e:
            expected = next(s for cls, s in _STATUS_OF.items() if isinstance(e, cls))
            if not gb11643.compact(value):
                expected = {IdStatus.MISSING}
            assert IdStatus(ids.status[i]) in expected, (value, e)
            continue
        assert ids.status[i] == IdStatus.VALID, value
        body = number[:17] if len(number) == 18 else number[:6] + "19" + number[6:]
        assert ids.key[i] == int(body)
        assert ids.text([i])[0] == number


_NAMES = ["李秀英", "张伟", "王芳", "买买提·艾力", "陈国华", "刘丽"]
_VARIANT = {"李秀英": "李 秀英", "张伟": "張偉", "王芳": "王芳　", "买买提·艾力": "买买提•艾力",
            "陈国华": "陳國華", "刘丽": "劉麗"}


@st.composite
def _masters(draw):
    people = draw(st.lists(st.tuples(st.sampled_from(["110105", "440301", "650102"]),
                                     st.dates(datetime.date(1930, 1, 1),
                                              datetime.date(2005, 12, 31)),
                                     st.integers(0, 20), st.sampled_from(_NAMES)),
                           min_size=0, max_size=12, unique_by=lambda p: (p[0], p[1], p[2])))
    core, claims = [], []
    for region, day, seq, name in people:
        number = id18(region, day.strftime("%Y%m%d"), f"{seq:03d}")
        birth = day.isoformat()
        for _ in range(draw(st.sampled_from([0, 1, 1, 1, 2]))):
            core.append((draw(st.sampled_from([number, number, wrong_check(number)])), name,
                         birth, ""))
        for _ in range(draw(st.sampled_from([0, 1, 1, 1, 2]))):
            form = number
            if day.year < 2000 and draw(st.booleans()):
                form = gb11643.to_15(number)
            typo = draw(st.sampled_from(["none", "none", "none", "digit", "swap", "check"]))
            if typo == "digit":
                form = change(form, draw(st.integers(0, len(form) - 2)))
            elif typo == "swap":
                form = swap(form, draw(st.integers(0, len(form) - 3)))
            elif typo == "check" and len(form) == 18:
                form = wrong_check(form)
            shown = _VARIANT[name] if draw(st.booleans()) else name
            shown_birth = birth if draw(st.integers(0, 9)) else "1999-09-09"
            claims.append((form, shown, shown_birth, ""))
    claims += [(junk, "某某", "", "") for junk in draw(
        st.lists(st.sampled_from(["", "abc", "12345", "1101051949123100"]), max_size=3))]
    order = draw(st.permutations(range(len(claims))))
    return core, [claims[i] for i in order]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_masters())
def test_every_row_lands_in_exactly_one_class(data):
    core_rows, claims_rows = data
    core, claims = master(core_rows), master(claims_rows)
    result = reconcile(core, claims)  # check_partition() inside: one class per row
    counts = result.counts()
    assert sum(c["core_rows"] for c in counts.values()) == len(core_rows)
    assert sum(c["claims_rows"] for c in counts.values()) == len(claims_rows)
    for name in ("matched", "matched_with_typo", "mismatch"):
        assert counts[name]["core_rows"] == counts[name]["claims_rows"] == counts[name]["outcomes"]
    assert counts["missing_in_claims"]["claims_rows"] == 0
    assert counts["missing_in_core"]["core_rows"] == 0
    # A clean record whose key is held once on each side is matched.
    core_keys = pd.Series(core.ids.key).value_counts()
    claims_keys = pd.Series(claims.ids.key[claims.ids.status == 0]).value_counts()
    for i, (number, _name, birth, _phone) in enumerate(claims_rows):
        key = claims.ids.key[i]
        if (claims.ids.status[i] == 0 and core_keys.get(key, 0) == 1
                and claims_keys.get(key, 0) == 1):
            c = int(np.flatnonzero(core.ids.key == key)[0])
            same = (core_rows[c][2] == birth and core.ids.status[c] == 0
                    and name_key(core_rows[c][1]) == name_key(_name))
            if same:
                assert result.claims_outcome[i] == Outcome.MATCHED, (number, core_rows[c])


# --- the job: CSV, SQL, CLI ---------------------------------------------------------

def _write_csvs(tmp_path):
    core = pd.DataFrame(CORE, columns=["id_number", "name", "birth_date", "phone"])
    claims = pd.DataFrame(CLAIMS, columns=["insured_id", "name", "birth_date", "phone"])
    claims["policy_count"] = np.arange(len(claims)) % 3 + 1
    core_csv, claims_csv = tmp_path / "core.csv", tmp_path / "claims.csv"
    core.to_csv(core_csv, index=False, encoding="utf-8-sig")
    claims.to_csv(claims_csv, index=False)
    return core_csv, claims_csv


def _class_counts(summary: dict) -> dict[str, int]:
    return {k: v["outcomes"] for k, v in summary["classes"].items()}


def test_csv_job_writes_summary_and_exceptions(tmp_path):
    from backoffice.reconcile_job import reconcile_files

    core_csv, claims_csv = _write_csvs(tmp_path)
    report = reconcile_files(core_csv, claims_csv, tmp_path / "out", today=TODAY)
    summary = json.loads(report.summary_path.read_text("utf-8"))
    expected = pd.Series(list(EXPECTED.values())).value_counts()
    for name in CLASSES:
        rows = summary["classes"][name]
        assert rows["core_rows"] + rows["claims_rows"] == expected.get(name, 0)
    exceptions = pd.read_csv(report.exceptions_path, dtype=str, keep_default_na=False)
    assert len(exceptions) == summary["exception_lines"]
    assert set(exceptions["class"]) == set(CLASSES) - {"matched"}
    # Every row that is not matched is in the file, with its full values.
    core_lines = exceptions["core_row"].ne("").sum()
    assert core_lines == len(CORE) - summary["classes"]["matched"]["core_rows"]
    typo = exceptions[exceptions["claims_insured_id"] == swap(XU, 10)].iloc[0]
    assert typo["class"] == "matched_with_typo" and typo["core_id_number"] == XU
    assert typo["claims_policy_count"] in {"1", "2", "3"}
    junk = exceptions[exceptions["claims_name"] == "乱码"].iloc[0]
    assert junk["claims_insured_id"] == "ABCDEFGHIJKLMNOPQR"
    assert junk["claims_birth_date"] == "not a date"
    assert not re.search(r"\d{17}[\dX]", json.dumps(summary))  # no number in the summary


def _columns(m: Master) -> dict:
    return {"key": m.ids.key.tolist(), "status": m.ids.status.tolist(),
            "ids": list(m.ids.text(np.arange(len(m)))),
            "names": list(m.name_text(np.arange(len(m)))), "birth": m.birth.tolist(),
            "births": list(m.birth_text(np.arange(len(m)))),
            "phones": list(m.phone_text(np.arange(len(m))))}


def test_plain_reader_agrees_with_pandas(tmp_path, monkeypatch):
    """The vectorised byte scanner reads what pandas' CSV parser reads; quotes and
    CRLF line ends also work (through pandas, and by stripping CR)."""
    import backoffice.reconcile_job as job
    from bench.bench_reconcile import generate_masters

    generate_masters(3000, tmp_path / "g", seed=5)
    plain = job.read_master_csv(tmp_path / "g" / "claims.csv", job.CLAIMS_SCHEMA, today=TODAY)
    _core_csv, claims_csv = _write_csvs(tmp_path)
    plain_small = job.read_master_csv(claims_csv, job.CLAIMS_SCHEMA, today=TODAY)
    crlf = tmp_path / "crlf.csv"
    crlf.write_bytes(claims_csv.read_bytes().replace(b"\n", b"\r\n"))
    plain_crlf = job.read_master_csv(crlf, job.CLAIMS_SCHEMA, today=TODAY)

    def refuse(*args, **kwargs):
        raise job._NotPlain("forced")

    monkeypatch.setattr(job, "_plain_csv", refuse)
    parsed = job.read_master_csv(tmp_path / "g" / "claims.csv", job.CLAIMS_SCHEMA, today=TODAY)
    assert _columns(plain) == _columns(parsed)
    assert _columns(plain_small) == _columns(plain_crlf) == _columns(
        job.read_master_csv(claims_csv, job.CLAIMS_SCHEMA, today=TODAY))
    assert list(plain.carry["policy_count"][:3].astype(str)) == \
        list(parsed.carry["policy_count"][:3].astype(str))
    monkeypatch.undo()
    gbk = tmp_path / "gb18030.csv"
    gbk.write_bytes(claims_csv.read_text("utf-8").encode("gb18030"))
    assert _columns(job.read_master_csv(gbk, job.CLAIMS_SCHEMA, encoding="gb18030",
                                        today=TODAY)) == _columns(plain_small)
    quoted = tmp_path / "quoted.csv"
    quoted.write_text('id_number,name,birth_date,phone\n'
                      f'{LI},"Li, Xiuying",1949-12-31,\n{ZHANG},"张""伟",1980-01-01,\n',
                      "utf-8")
    m = job.read_master_csv(quoted, job.CORE_SCHEMA, today=TODAY)
    assert list(m.name_text([0, 1])) == ["Li, Xiuying", '张"伟']


def test_long_names_are_kept_whole():
    long_name = "阿卜杜热合曼·" * 30  # 330 bytes: past the column's width
    core = master([(LI, long_name, "1949-12-31", "")])
    claims = master([(LI, long_name.replace("·", "•"), "1949-12-31", ""), (ZHANG, long_name,
                                                                              "", "")])
    result = reconcile(core, claims)
    assert CLASSES[result.core_outcome[0]] == "matched"
    assert core.name_text([0])[0] == long_name
    assert core.name.dtype.itemsize < 64


def test_cli_prints_only_masked_data(tmp_path):
    from typer.testing import CliRunner

    from cli.reconcile import reconcile_app

    core_csv, claims_csv = _write_csvs(tmp_path)
    out = CliRunner().invoke(reconcile_app, ["run", "--core", str(core_csv), "--claims",
                                             str(claims_csv), "--out", str(tmp_path / "o"),
                                             "--show", "5", "--json"])
    assert out.exit_code == 0, out.output
    printed = out.output
    assert "matched_with_typo" in printed
    for number, name, *_ in CORE + CLAIMS:
        if len(number) >= 15:
            assert number not in printed
        if len(name) >= 2:
            assert name not in printed
    assert (tmp_path / "o" / "exceptions.csv").exists()


def test_masked_sample_masks_every_personal_column(tmp_path):
    from backoffice.reconcile_job import masked_sample, reconcile_files

    core_csv, claims_csv = _write_csvs(tmp_path)
    report = reconcile_files(core_csv, claims_csv, tmp_path / "out", today=TODAY)
    rows = masked_sample(report.sample)
    assert rows
    text = json.dumps(rows, ensure_ascii=False)
    assert not re.search(r"\d{15}", text)
    assert "罗兰" not in text and "1945-01-19" not in text
    assert any(re.fullmatch(r"\d{3}\*{13}[\dX]{2}", r["core_id_number"]) for r in rows)
    assert any(r["core_birth_date"] == "1945-**-**" for r in rows)


def _sql_round_trip(tmp_path, url: str) -> dict:
    from backoffice.reconcile_job import reconcile_tables, write_master_sql

    core_csv, claims_csv = _write_csvs(tmp_path)
    assert write_master_sql(core_csv, url, "core_customers") == len(CORE)
    assert write_master_sql(claims_csv, url, "claims_insured") == len(CLAIMS)
    return reconcile_tables(url, "core_customers", url, "claims_insured", tmp_path / "sql",
                            today=TODAY).summary


def test_sql_input_sqlite_matches_csv(tmp_path):
    from backoffice.reconcile_job import reconcile_files

    summary = _sql_round_trip(tmp_path, f"sqlite:///{tmp_path / 'masters.db'}")
    csv_summary = reconcile_files(*_write_csvs(tmp_path), tmp_path / "csv", today=TODAY).summary
    assert _class_counts(summary) == _class_counts(csv_summary)
    assert "table core_customers" in summary["sources"]["core"]


@pytest.mark.postgres
def test_sql_input_postgres_matches_csv(tmp_path, postgres_url):
    from backoffice.reconcile_job import reconcile_files

    summary = _sql_round_trip(tmp_path, postgres_url)
    csv_summary = reconcile_files(*_write_csvs(tmp_path), tmp_path / "csv", today=TODAY).summary
    assert _class_counts(summary) == _class_counts(csv_summary)
    assert summary["sources"]["core"].startswith("postgresql+psycopg://")


def test_sql_input_reads_typed_columns(tmp_path):
    """A real schema: DATE and BIGINT columns (cast to text when read)."""
    import sqlalchemy as sa

    from backoffice.reconcile_job import CORE_SCHEMA, read_master_sql

    url = f"sqlite:///{tmp_path / 'typed.db'}"
    engine = sa.create_engine(url)
    meta = sa.MetaData()
    table = sa.Table("core_customers", meta, sa.Column("id_number", sa.String(18)),
                     sa.Column("name", sa.String(40)), sa.Column("birth_date", sa.Date),
                     sa.Column("phone", sa.BigInteger))
    meta.create_all(engine)
    with engine.begin() as conn:
        conn.execute(table.insert(), [
            {"id_number": LI, "name": "李秀英", "birth_date": datetime.date(1949, 12, 31),
             "phone": 13812345678},
            {"id_number": ZHANG, "name": "张伟", "birth_date": None, "phone": None}])
    engine.dispose()
    core = read_master_sql(url, "core_customers", CORE_SCHEMA)
    assert core.birth.tolist() == [19491231, 0]
    assert core.phone.tolist() == [13812345678, 0]
    assert list(core.ids.text([0, 1])) == [LI, ZHANG]


# --- the flow, at a medium size -----------------------------------------------------

@pytest.mark.integration
def test_reconcile_masters_flow(prefect_harness, tmp_path):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    from bench.bench_reconcile import generate_masters
    from flows.reconcile_masters import reconcile_masters

    planted = generate_masters(20_000, tmp_path / "data", seed=11)
    state = reconcile_masters(core_csv=str(tmp_path / "data" / "core.csv"),
                              claims_csv=str(tmp_path / "data" / "claims.csv"),
                              out_dir=str(tmp_path / "out"), return_state=True)
    assert state.is_completed(), state
    summary = state.result()
    classes = summary["classes"]
    assert sum(c["core_rows"] for c in classes.values()) == planted["core_rows"]
    assert sum(c["claims_rows"] for c in classes.values()) == planted["claims_rows"]
    # The planted mix shows up in the classes (typos mostly recovered).
    assert classes["missing_in_claims"]["outcomes"] >= planted["missing_in_claims"]
    assert classes["matched_with_typo"]["outcomes"] >= 0.9 * planted["typos"]
    assert classes["ambiguous"]["claims_rows"] >= 2 * planted["claims_duplicates"]
    assert classes["matched"]["outcomes"] > 0.9 * planted["core_rows"]

    async def _artifacts():
        async with get_client() as client:
            return await client.read_artifacts(artifact_filter=ArtifactFilter(
                key=ArtifactFilterKey(any_=["reconcile-masters-exceptions",
                                            "reconcile-masters-summary"])))

    artifacts = asyncio.run(_artifacts())
    assert {a.key for a in artifacts} == {"reconcile-masters-exceptions",
                                          "reconcile-masters-summary"}
    core = pd.read_csv(tmp_path / "data" / "core.csv", dtype=str, keep_default_na=False)
    published = " ".join(str(a.data) for a in artifacts)
    assert not re.search(r"\d{15}", published)
    assert not any(name in published for name in core["name"].head(2000) if len(name) >= 3)
    assert "***" in published
