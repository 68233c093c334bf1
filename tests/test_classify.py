"""Document classification from the recognised text (ocr/classify.py): a card front whose
pale labels a blurred photo lost is still told by its values' shapes."""

from __future__ import annotations

from domain.models import DocType, OcrLine
from ocr.classify import classify_text, id_number_shaped


def _lines(*texts):
    return [OcrLine(text=t, confidence=0.9, polygon=[(0, 40 * i), (300, 40 * i), (300, 40 * i + 30),
                                                     (0, 40 * i + 30)])
            for i, t in enumerate(texts)]


def test_an_id_number_is_told_by_its_first_digits_even_when_misread_further_on():
    assert id_number_shaped("5421321953102734")  # 昌都 洛隆县, born 1953-10
    assert id_number_shaped("310110199307")
    assert not id_number_shaped("6222021234567890123")  # a bank card (BIN 622202)
    assert not id_number_shaped("110105189903")  # born in 1899: not a card holder
    assert not id_number_shaped("11010519901")  # too short to say


def test_a_front_without_its_labels_is_a_front_and_not_a_bank_card():
    # s855_0009 and s855_0012 (dev seed 855, hard photos): every label lost
    lines = _lines("礼西", "1953年10月 28 日", "西藏自治区昌都地区理", "县三合铺核花村7组54号",
                   "5421321953102±±734")
    assert classify_text(lines)[0] is DocType.ID_CARD_FRONT
    lines = _lines("鲜", "1生 399年7月308", "上南市场浦区美江大连77", "3101101993073", "137")
    assert classify_text(lines)[0] is DocType.ID_CARD_FRONT
    # an address alone is not enough
    assert classify_text(_lines("西藏自治区昌都地区洛隆县"))[0] is DocType.UNKNOWN


def _at(text, x0, y0, x1, y1):
    return OcrLine(text=text, confidence=0.9, polygon=[(x0, y0), (x1, y0), (x1, y1), (x0, y1)])


def test_a_long_number_on_the_row_of_the_number_label_tells_a_front():
    # s884_0009 (hard photo): the labels misread, a digit of the number dropped, the
    # printed line 公民身份号码 put back by the recogniser's likelihood (cells.printed_lines)
    lines = [_at("乔摄风", 200, 60, 330, 110), _at("出1 1966年11月14日", 60, 220, 520, 270),
             _at("美州省的西南布依族基族", 180, 300, 640, 350),
             _at("公民身份号码", 50, 520, 270, 575), _at("522324 98611145207", 295, 520, 865, 585)]
    assert classify_text(lines)[0] is DocType.ID_CARD_FRONT
    # the same number on another row than the label says nothing of the kind
    apart = [*lines[:3], _at("公民身份号码", 50, 420, 270, 470), lines[4]]
    assert classify_text(apart)[0] is DocType.UNKNOWN
