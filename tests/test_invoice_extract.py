"""The medical-invoice extractor on synthetic OCR lines (no OCR): label anchors inline,
to the right and below, look-alike labels that are no field, the item table (groups side
by side, quantity and unit columns, cells run together, a tilted photo), the kind, and
the total's vote."""

from __future__ import annotations

import math

import pytest

from domain.models import DocType, OcrLine
from ocr.classify import classify_text
from ocr.extract import extract
from ocr.extract.invoice import extract_medical_invoice, find_labels, normalise_invoice


def L(text: str, x: float, y: float, w: float | None = None, h: float = 30,
      conf: float = 0.99) -> OcrLine:
    w = w if w is not None else 28 * len(text)
    return OcrLine(text=text, confidence=conf,
                   polygon=[(x, y), (x + w, y), (x + w, y + h), (x, y + h)])


def values(lines) -> dict:
    return {k: f.value for k, f in extract_medical_invoice(lines).items()}


ELECTRONIC = [
    L("湖南省医疗门诊收费票据（电子）", 470, 80, 680, 50),
    L("票据代码：43497809", 80, 217), L("票据号码：1216302296", 920, 217),
    L("交款人统一社会信用代码：274514983261654149", 76, 258, 530),
    L("校验码：f20a5a", 917, 259),
    L("交款人：覃旻成", 78, 305), L("开票日期：2023-09-11", 922, 308),
    L("项目", 226, 360), L("金额", 534, 360), L("备注", 727, 357),
    L("项目", 975, 359), L("金额", 1282, 360), L("备注", 1475, 357),
    L("诊察费", 84, 399), L("4.21", 625, 403, 60), L("西药费", 832, 399),
    L("236.06", 1352, 403, 80),
    L("治疗费", 83, 438), L("560.38", 605, 445, 80), L("卫生材料费", 833, 439),
    L("9.68", 1373, 443, 60),
    L("其他费", 83, 480), L("27.69", 615, 485, 70),
    L("金额合计(大写)捌佰叁拾捌元零贰分", 95, 630, 405),
    L("(小写)838.02", 1077, 627, 157),
    L("备注：医保类型：城镇职工医保", 91, 706, 367),
    L("门诊号：212878081 就诊日期：2023-09-11", 488, 704, 518),
    L("医保统筹基金支付：638.66", 186, 748, 296),
    L("个人账户支付：62.38个人自付：136.98", 527, 751, 483),
    L("个人自费：0.00", 1061, 749, 173),
    L("收款单位（章）：大荔县中医医院", 76, 888, 367),
    L("复核人：秦蓉丽", 1085, 891), L("收款人：粟懿娟铭", 1352, 891),
    L("财务专用章", 284, 936),
]
ELECTRONIC_TRUTH = {
    "invoice_kind": "门诊", "invoice_code": "43497809", "invoice_number": "1216302296",
    "invoice_date": "2023-09-11", "patient_name": "覃旻成", "hospital": "大荔县中医医院",
    "items": "诊察费:4.21;西药费:236.06;治疗费:560.38;卫生材料费:9.68;其他费:27.69",
    "total_amount": "838.02", "total_amount_in_words": "捌佰叁拾捌元零贰分",
    "insurance_paid": "638.66", "self_paid": "136.98",
}


def test_electronic_inline_pairs():
    assert values(ELECTRONIC) == ELECTRONIC_TRUTH


def test_every_field_is_returned_and_classified():
    assert classify_text(ELECTRONIC)[0] is DocType.MEDICAL_INVOICE
    fields = extract(DocType.MEDICAL_INVOICE, ELECTRONIC)
    assert fields["self_paid"].value == "136.98" and fields["self_paid"].boxes
    assert extract(DocType.MEDICAL_INVOICE, [L("票据代码：12345678", 0, 0)])["items"].value is None


PAPER = [
    L("海南省医疗住院收费票据", 455, 57, 425, 37),
    L("票据代码：46068068", 53, 121, 201), L("票据号码：2570104111", 936, 122, 222),
    L("姓名", 88, 168, 54), L("高懿", 181, 168, 53), L("性别", 396, 167, 56),
    L("女", 487, 168, 35), L("医保类型", 685, 168, 92), L("居民医保", 798, 169, 92),
    L("住院号", 1001, 167, 73), L("56713456", 1106, 171, 92),
    L("项目名称", 125, 208, 94), L("金额（元）", 319, 211, 104),
    L("项目名称", 537, 211, 93), L("金额（元）", 729, 207, 103),
    L("项目名称", 947, 212, 92), L("金额（元）", 1142, 212, 98),
    # cells run together by the detector: 83.37护理费
    L("床位费", 59, 251, 69), L("83.37护理费", 396, 253, 142), L("546.04", 798, 254, 77),
    L("中成药费", 877, 253, 94), L("114.96", 1206, 256, 76),
    L("中草药费", 59, 293, 90), L("2989.97", 378, 296, 79), L("化验费", 469, 293, 69),
    L("277.46", 799, 294, 74), L("治疗费", 879, 293, 71), L("35.97", 1218, 293, 62),
    L("金额合计（大写）", 64, 418, 169), L("壹仟肆佰零陆元叁角捌分", 248, 419, 267),
    L("(小写)", 919, 417, 69), L("¥4047.77", 1000, 417, 96),
    L("统筹基金支付5384.80", 77, 453, 249, 40),
    L("其他支付", 407, 461, 90), L("0.00", 548, 462, 55),
    L("个人账户支付", 699, 464, 127), L("0.00", 856, 462, 53),
    L("个人支付", 1027, 462, 86), L("8845.25", 1166, 464, 81),
    L("开票日期：2023.06.08", 893, 542, 216),
    L("收款单位（章）：包头市中医院", 50, 541, 300), L("收款人：裴华勇", 647, 541, 151),
]


def test_paper_grid_values_right_of_labels():
    v = values(PAPER)
    assert v["invoice_kind"] == "住院"
    assert v["patient_name"] == "高懿"
    assert v["items"] == ("床位费:83.37;护理费:546.04;中成药费:114.96;中草药费:2989.97;"
                          "化验费:277.46;治疗费:35.97")
    assert v["total_amount"] == "4047.77" and v["total_amount_in_words"] == "壹仟肆佰零陆元叁角捌分"
    assert v["insurance_paid"] == "5384.80" and v["self_paid"] == "8845.25"
    assert v["invoice_date"] == "2023-06-08" and v["hospital"] == "包头市中医院"


GRID = [
    L("上海市医疗门诊收费票据（电子）", 370, 50, 540, 45),
    L("票据代码", 66, 135, 70), L("票据号码", 363, 135, 70), L("开票日期", 659, 135, 70),
    L("门诊号", 956, 135, 60),
    L("31432426", 70, 165, 90), L("4132982213", 368, 165, 100),
    L("2023/12/06", 663, 165, 95), L("4183700", 960, 165, 80),
    L("姓名", 66, 203, 40), L("性别", 304, 203, 40), L("就诊日期", 433, 203, 70),
    L("医疗机构名称", 757, 203, 100),
    L("涂心玲天", 72, 232, 80), L("女", 309, 232, 20), L("2023-12-06", 439, 232, 90),
    L("上海市人民医院", 763, 232, 130),
    L("项目名称", 267, 287, 70), L("数量", 618, 287, 40), L("单位", 783, 287, 40),
    L("金额", 1047, 287, 40),
    L("挂号费", 63, 320, 56), L("2", 702, 320, 10), L("袋", 797, 320, 18),
    L("4.00", 1198, 320, 38),
    L("诊察费", 63, 353, 56), L("4", 702, 353, 10), L("天", 797, 353, 18),
    L("58.00", 1188, 353, 48),
    L("合计（小写）", 66, 575, 90), L("合计（大写）", 408, 575, 90),
    L("62.00", 72, 605, 50), L("陆拾贰元整", 414, 605, 90),
    L("统筹基金支付", 66, 645, 100), L("其他支付", 304, 645, 65),
    L("个人账户支付", 542, 645, 100), L("个人自付", 780, 645, 70),
    L("个人自费", 1017, 645, 70),
    L("0.00", 72, 675, 40), L("0.00", 309, 675, 40), L("0.00", 547, 675, 40),
    L("46.34", 785, 675, 50), L("15.66", 1022, 675, 50),
    L("收款单位（章）：上海市人民医院", 56, 825, 280), L("收款人：齐峰", 995, 825, 110),
]


def test_grid_values_under_labels():
    v = values(GRID)
    assert v == {
        "invoice_kind": "门诊", "invoice_code": "31432426", "invoice_number": "4132982213",
        "invoice_date": "2023-12-06", "patient_name": "涂心玲天", "hospital": "上海市人民医院",
        "items": "挂号费:4.00;诊察费:58.00", "total_amount": "62.00",
        "total_amount_in_words": "陆拾贰元整", "insurance_paid": "0.00", "self_paid": "46.34",
    }


def _rotated(lines, degrees: float):
    a = math.radians(degrees)
    out = []
    for ln in lines:
        pts = [(x * math.cos(a) - y * math.sin(a), x * math.sin(a) + y * math.cos(a))
               for x, y in ln.polygon]
        out.append(OcrLine(text=ln.text, confidence=ln.confidence, polygon=pts))
    return out


@pytest.mark.parametrize("degrees", [-4, 3])
def test_tilted_photo_reads_the_same(degrees):
    assert values(_rotated(ELECTRONIC, degrees)) == ELECTRONIC_TRUTH
    assert values(_rotated(GRID, degrees))["items"] == "挂号费:4.00;诊察费:58.00"


def test_look_alike_labels_are_not_fields():
    lines = [L("交款人统一社会信用代码：110105194912310021", 0, 0, 600),
             L("个人账户支付：50.00", 0, 50), L("个人自费：20.00", 400, 50),
             L("收款人：李四", 0, 100), L("门诊号：12345678", 400, 100)]
    v = values(lines)
    assert "patient_name" not in v and "self_paid" not in v and "hospital" not in v


def test_total_from_the_capitals_when_the_figures_are_misread():
    lines = [line for line in ELECTRONIC if not line.text.startswith("(小写)")]
    lines.append(L("(小写)838.O2", 1077, 627, 157))
    f = extract_medical_invoice(lines)["total_amount"]
    assert f.value == "838.02" and f.corrections


def test_find_labels_and_normal_forms():
    assert [f for _, f, _, _ in find_labels("个人账户支付：62.38个人自付：136.98")] == [
        "_ignore", "self_paid"]
    assert [f for _, f, _, _ in find_labels("医保统筹基金支村：638.66")] == ["insurance_paid"]
    assert normalise_invoice("invoice_number", "No 0012345678") == "0012345678"
    assert normalise_invoice("total_amount", "¥1,234.50") == "1234.50"
    assert normalise_invoice("total_amount", "2023") is None
    assert normalise_invoice("hospital", "（）南华县人民医院") == "南华县人民医院"
    assert normalise_invoice("hospital", "章丘市人民医院") == "章丘市人民医院"
    assert normalise_invoice("invoice_date", "2024年03月05日") == "2024-03-05"
