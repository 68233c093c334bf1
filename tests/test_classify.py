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
