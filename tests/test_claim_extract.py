"""The claim-form extractor on OCR lines (no OCR): layouts the generator does not draw,
labels read with characters missing, and the normal forms of values."""

from __future__ import annotations

import pytest

from domain.models import OcrLine
from ocr.extract.claim import extract_claim_form, find_labels, match_label
from ocr.extract.normalise import normalise


def _line(text: str, x: float, y: float, h: float = 30.0, char_w: float = 30.0) -> OcrLine:
    w = char_w * len(text)
    return OcrLine(text=text, confidence=0.95,
                   polygon=[(x, y), (x + w, y), (x + w, y + h), (x, y + h)])


def _values(lines: list[OcrLine]) -> dict[str, str | None]:
    return {k: f.value for k, f in extract_claim_form(lines).items()}


def test_three_pairs_per_row_in_an_order_never_generated():
    # Label | value | label | value | label | value, labels of other insurers.
    rows = [
        [("开户名", "李小龙"), ("银行卡号", "6222 0212 3456 7890 123"), ("收款银行", "中国银行银川分行")],
        [("联系方式", "139-1234-5678"), ("出险时间", "2024.05.03"), ("金额大写", "壹仟贰佰元整")],
        [("申请金额", "¥1,200.00"), ("被保人", "王芳"), ("保险合同号", "PA2024000123")],
    ]
    lines = []
    for r, pairs in enumerate(rows):
        y = 100 + 60 * r
        for c, (label, value) in enumerate(pairs):
            x = 50 + 800 * c
            lines += [_line(label + "：", x, y), _line(value, x + 250, y, char_w=20)]
    got = _values(lines)
    assert got["account_name"] == "李小龙"
    assert got["account_number"] == "6222021234567890123"
    assert got["bank_name"] == "中国银行银川分行"
    assert got["phone"] == "13912345678"
    assert got["accident_date"] == "2024-05-03"
    assert got["claim_amount_in_words"] == "壹仟贰佰元整"
    assert got["claim_amount"] == "1200.00"  # a bare 申请金额 with a figure
    assert got["insured_name"] == "王芳"
    assert got["policy_number"] == "PA2024000123"


def test_labels_read_with_characters_missing_or_wrong():
    lines = [
        _line("与被保险关系：配偶", 50, 100),
        _line("申请额（写）：人民币26,197.02元", 50, 160),
        _line("被保验人姓名：殷桂怡", 50, 220),
        _line("522229198511126320与被保险关系：", 50, 280),
    ]
    got = _values(lines)
    assert got["relationship"] == "配偶"
    assert got["claim_amount"] == "26197.02"
    assert got["insured_name"] == "殷桂怡"
    # Short labels are never guessed: 人 alone is no label.
    assert match_label("保险", fuzzy=True) is None


def test_label_run_into_the_previous_value_is_split_off():
    lines = [_line("出险日期：", 50, 100), _line("2023年12月5日诊断:", 300, 100),
             _line("支气管肺炎", 800, 100)]
    got = _values(lines)
    assert got["accident_date"] == "2023-12-05"
    assert got["diagnosis"] == "支气管肺炎"


def test_rows_of_a_skewed_photo_still_pair_up():
    # Text rotated by about 3 degrees: the value sits 25 px higher than its label.
    slope = 0.05
    lines = []
    for r, (label, value) in enumerate([("保单号：", "8255402024901386267"),
                                        ("被保险人姓名：", "王逸超")]):
        y = 100 + 70 * r
        lines += [_line(label, 50, y - slope * 50), _line(value, 550, y - slope * 550)]
    for ln in lines:  # shear the boxes so that their top edges carry the skew
        (x0, y0), (x1, _), (_, y2), _ = ln.polygon
        ln.polygon = [(x0, y0), (x1, y0 - slope * (x1 - x0)), (x1, y2 - slope * (x1 - x0)),
                      (x0, y2)]
    got = _values(lines)
    assert got["policy_number"] == "8255402024901386267"
    assert got["insured_name"] == "王逸超"


@pytest.mark.parametrize(("raw", "want"), [
    ("¥12,345.67", "12345.67"), ("12345.67元", "12345.67"), ("人民币4,485.86元", "4485.86"),
    ("V3.001.23", "3001.23"), ("1,893.733", "1893.73"), ("12,345", "12345.00"),
    ("壹万贰仟", None), ("6217 9037 1732 1653 207", None),
])
def test_amount_in_figures(raw, want):
    assert normalise("claim_amount", raw) == want


@pytest.mark.parametrize(("raw", "want"), [
    ("贰万伍仟贰佰壹拾柒元陆陆分", "贰万伍仟贰佰壹拾柒元陆角陆分"),
    ("叁万壹仟捌佰陆拾叁元壹", "叁万壹仟捌佰陆拾叁元壹角"),
    ("壹任元伍角叁分", "壹仟元伍角叁分"),
    ("肆仟元零伍分", "肆仟元零伍分"),
    ("人民币壹万元整", "壹万元整"),
])
def test_amount_in_words(raw, want):
    assert normalise("claim_amount_in_words", raw) == want


@pytest.mark.parametrize(("raw", "want"), [
    ("中国工商银行天津分", "中国工商银行天津分行"),
    ("上海浦东发展银成都城东支行", "上海浦东发展银行成都城东支行"),
    ("宁夏银行银川分行", "宁夏银行银川分行"),
    ("农村信用社", "农村信用社"),
])
def test_bank_name(raw, want):
    assert normalise("bank_name", raw) == want


def test_two_stacked_labels_with_values_are_two_rows():
    # 被保险人 over 证件号码 would also read as the label 被保险人证件号码.
    lines = [_line("被保险人", 155, 490, 60), _line("颜福", 444, 484, 60),
             _line("证件号码:", 158, 568, 53), _line("220104199610142675", 453, 565, 57, 20)]
    got = _values(lines)
    assert got["insured_name"] == "颜福"
    assert got["insured_id_number"] == "220104199610142675"


def test_grid_of_centred_labels_over_left_aligned_values():
    # A row of label cells over a row of value cells (the generator's held-out `grid`
    # layout): each label is centred in its cell, each value starts at the cell's left
    # edge, so a value sits nearer the previous label than its own.
    cells = [(0, 500, "保单号码：", "YNX2019580129083"), (500, 720, "被保险人姓名：", "谷鑫乐"),
             (720, 1000, "性别：", "男")]
    lines = []
    for x0, x1, label, value in cells:
        lw = 30 * len(label)
        lines.append(_line(label, (x0 + x1 - lw) / 2, 100))
        lines.append(_line(value, x0 + 10, 150, char_w=22))
    lines += [_line("开户行：", 180, 250), _line("户名：", 760, 250),
              _line("招商银行楚雄元谋支行", 10, 300, char_w=25),
              _line("关颖妍秋", 510, 300)]
    got = _values(lines)
    assert got["policy_number"] == "YNX2019580129083"
    assert got["insured_name"] == "谷鑫乐"
    assert got["bank_name"] == "招商银行楚雄元谋支行"
    assert got["account_name"] == "关颖妍秋"


def test_value_centred_far_right_under_a_label_at_the_left_of_a_wide_cell():
    lines = [_line("账户名：", 10, 100), _line("开户行：", 300, 100),
             _line("季军凯", 60, 150), _line("平安银行丹东分行", 620, 150),
             _line("账号：", 10, 200), _line("6230 5867 8157 6975 993", 200, 250, char_w=18)]
    got = _values(lines)
    assert got["account_name"] == "季军凯"
    assert got["bank_name"] == "平安银行丹东分行"
    assert got["account_number"] == "6230586781576975993"


def test_a_title_is_no_label_and_a_numbered_heading_no_value():
    # 索赔申请书 is one character from the label 索赔申请人; the heading under it is not
    # the claimant's name.
    lines = [_line("索赔申请书", 500, 100, h=50, char_w=50),
             _line("1.索赔申请人信息", 100, 180),
             _line("索赔申请人：陶慧立", 110, 240)]
    assert _values(lines)["claimant_name"] == "陶慧立"


def test_labels_of_other_insurers_are_read_by_their_words():
    from ocr.extract.claim import label_by_words, match_label

    assert match_label("患者姓名：王五", fuzzy=True)[:2] == ("insured_name", "患者姓名")
    assert label_by_words("递交日期")[0] == "application_date"
    assert label_by_words("开户网点")[0] == "bank_name"
    assert label_by_words("申请人（受益人）")[0] == "claimant_name"
    assert label_by_words("申请人身份证号")[0] == "_ignore"  # the claimant's own number
    assert label_by_words("出险人身份证号")[0] == "insured_id_number"
    # Values are no labels: a hospital's or a bank's name, a diagnosis, a date, a name.
    for value in ("北京协和医院", "中国工商银行", "右踝关节扭伤", "2026年3月5日", "周博"):
        assert label_by_words(value) is None, value
    # A value and the label below it never wrap into one label.
    assert match_label("周博就医医院：", fuzzy=True, words=False) is None


def test_the_ticked_box_of_a_row_of_options():
    from ocr.extract.normalise import normalise

    assert normalise("relationship", "□本人 ☑配偶 □子女 □父母") == "配偶"
    assert normalise("relationship", "本人□配偶 □父母□子女□其他") == "本人"
    assert normalise("relationship", "本人 配偶 子女 父母 其他") is None  # no tick was read
    assert normalise("relationship", "本人") == "本人"


def test_a_value_run_into_the_next_label_is_cut_before_it():
    from ocr.extract.claim import find_labels, label_by_words

    assert label_by_words("重庆市中心医院诊断结果：") is None
    assert find_labels("重庆市中心医院诊断结果：")[0][:2] == (7, "diagnosis")
    assert find_labels("中国邮政储蓄银行重庆分行") == []  # a bank's name holds no label


def test_a_value_run_into_a_label_read_by_its_words_is_cut_before_it():
    """Seed 724, clean 0013: the hospital's value and the next column's 事故发生时间：
    (a label the table does not know) read as one line. The line is no hospital label;
    it is the hospital and the accident date's label, and the diagnosis under it is the
    diagnosis's."""
    from ocr.extract.claim import find_labels, label_by_words

    assert label_by_words("天津市中心医院事故发生时间：") is None
    assert [(s, f) for s, f, _l, _e in find_labels("天津市中心医院事故发生时间：")] == [
        (7, "accident_date")]
    lines = [_line("医院名称：", 77, 890, 38), _line("天津市中心医院 事故发生时间：", 349, 893, 32),
             _line("2026.05.07", 869, 893, 33, 16), _line("社区获得性肺炎", 347, 939, 31),
             _line("诊断结果：", 77, 937, 39)]
    got = _values(lines)
    assert (got["hospital"], got["accident_date"], got["diagnosis"]) == (
        "天津市中心医院", "2026-05-07", "社区获得性肺炎")
    # a label read by its words after another one, as before: 与被保人关系 after a value
    assert [f for _s, f, _l, _e in find_labels("18876583954与被保人关系：")] == ["relationship"]


def test_payee_name_is_the_account_holder_unless_the_form_asks_for_that_too():
    """领款人姓名 names the payee. On a form that asks nothing else about the account's
    name, that is the account holder; on a form that also has 账户名称, it is the
    applicant who receives the money."""
    payee_only = [_line("领款人姓名：周敏", 50, 100), _line("账号：6222021234567890123", 50, 160)]
    got = _values(payee_only)
    assert got["account_name"] == "周敏"
    assert "claimant_name" not in got
    both = [_line("领款人姓名：周敏", 50, 100), _line("账户名称：周建国", 50, 160),
            _line("账号：6222021234567890123", 50, 220)]
    got = _values(both)
    assert got["claimant_name"] == "周敏"
    assert got["account_name"] == "周建国"
    # A form with its own applicant label keeps the table's reading of 领款人姓名
    # (the first account-name label on the page gives the value).
    three = [_line("申请人姓名：周立", 50, 40), *both]
    got = _values(three)
    assert got["claimant_name"] == "周立"
    assert got["account_name"] == "周敏"


@pytest.mark.parametrize("raw", ["签字", "申请人签名", "（盖章）", "日期", "手印"])
def test_a_form_word_is_never_a_name(raw):
    assert normalise("claimant_name", raw) is None
    assert normalise("claimant_name", "谢霞林") == "谢霞林"


def test_a_label_word_in_a_sentence_is_not_a_label():
    """The 出险经过 narrative says 诊断为犬咬伤 (diagnosed as): 诊断 there is a verb, not
    the diagnosis label, whatever stands above the form's own diagnosis field."""
    lines = [_line("出险经过：于2024年3月1日在某县人民医院就诊，诊断为犬咬伤，后至某镇卫生院复查。", 50, 100),
             _line("伤病名称：犬咬伤", 50, 160)]
    assert _values(lines)["diagnosis"] == "犬咬伤"
    assert [f for _s, f, _l, _e in find_labels("就诊，诊断为犬咬伤，后至")] == []


def test_two_stacked_labels_read_by_their_words_are_two_rows():
    # 领款人 over 开户网点, neither in the label table, each with its value to its right:
    # two rows, not the one label 领款人开户网点 (seen on a wide form, s816).
    lines = [_line("银行卡号", 132, 1381, 55), _line("622909165531338147", 345, 1390, 37, 20),
             _line("领款人", 153, 1449, 57), _line("司马妍燕", 341, 1449, 49),
             _line("开户网点", 137, 1520, 48), _line("兴业银行上海虹口支行", 345, 1520, 43)]
    got = _values(lines)
    assert got["account_name"] == "司马妍燕"
    assert got["bank_name"] == "兴业银行上海虹口支行"


def test_a_digit_is_never_a_misread_label_character():
    # 被保险人身份证号 over its number: the number's first digit is no misread 码.
    lines = [_line("被保险人身份证号", 79, 416, 37), _line("542333195612256191", 87, 462, 31, 15)]
    assert _values(lines)["insured_id_number"] == "542333195612256191"


def test_a_label_read_whole_by_its_words_beats_a_misread_table_label():
    # 收款人户名 is no misreading of 收款人姓名: with 领款人姓名 on the same form, the
    # payee's name is then the claimant's.
    assert match_label("收款人户名", fuzzy=True)[:2] == ("account_name", "收款人户名")
    lines = [_line("领款人姓名", 754, 414, 45), _line("秦天超宏", 764, 459, 40),
             _line("收款人户名", 758, 1096, 39), _line("秦天超宏", 768, 1136, 41)]
    got = _values(lines)
    assert got["claimant_name"] == "秦天超宏"
    assert got["account_name"] == "秦天超宏"


def test_a_value_under_its_label_in_the_right_column_of_two():
    # Two columns whose rows do not line up: the bank's name under 开户银行 (right) sits
    # level with 与被保人关系 (left), which has no value on its own line.
    lines = [_line("开户银行：", 651, 418, 45), _line("与被保人关系：", 85, 442, 33),
             _line("中国银行本溪桓仁支行", 672, 459, 31),
             _line("□本人 □配偶 □父母 ☑子女", 98, 475, 38)]
    got = _values(lines)
    assert got["bank_name"] == "中国银行本溪桓仁支行"
    assert got["relationship"] == "子女"


def test_a_row_of_check_boxes_wrapped_onto_the_next_line():
    lines = [_line("与出险人关系：", 129, 568, 33), _line("□本人 □父母 □配偶 □子女", 135, 605, 40),
             _line("☑其他", 134, 645, 40)]
    assert _values(lines)["relationship"] == "其他"


def test_a_section_heading_starts_no_wrapped_label():
    # 领款人账户信息 over 开户网点: a heading, then a label with its value (s817, form 1).
    lines = [_line("领款人账户信息", 101, 1131, 42), _line("开户网点:", 125, 1195, 38),
             _line("中国民生银行哈密分行", 330, 1195, 36), _line("领款人:", 127, 1244, 39),
             _line("阿布都", 330, 1244, 39)]
    got = _values(lines)
    assert got["bank_name"] == "中国民生银行哈密分行"
    assert got["account_name"] == "阿布都"


def test_labels_with_a_value_between_them_are_two_labels():
    # 领款人 / its value / 开户行名称, each label over its value (a one-column form, s817
    # form 10): not the label 领款人开户行名称.
    lines = [_line("领款人", 166, 1050, 49), _line("倪诗博", 170, 1096, 55),
             _line("开户行名称", 166, 1156, 46), _line("中国农业银行阿克陶支行", 177, 1204, 50)]
    got = _values(lines)
    assert got["account_name"] == "倪诗博"
    assert got["bank_name"] == "中国农业银行阿克陶支行"


def test_two_cells_values_run_together_are_cut_at_the_space():
    # Under 治疗医院 | 医院诊断 | 出险日期 the detector read the diagnosis and the date as
    # one line (s817, form 9, a grid).
    lines = [_line("治疗医院:", 267, 617, 43), _line("医院诊断:", 668, 619, 39),
             _line("出险日期:", 932, 619, 39),
             _line("湘西土家族苗族自治州中心医院", 81, 669, 40, 27),
             OcrLine(text="左手掌软组织挫裂伤 2025/04/06", confidence=0.98,
                     polygon=[(607, 667), (1026, 667), (1026, 713), (607, 713)])]
    got = _values(lines)
    assert got["hospital"] == "湘西土家族苗族自治州中心医院"
    assert got["diagnosis"] == "左手掌软组织挫裂伤"
    assert got["accident_date"] == "2025-04-06"


def test_a_value_box_that_shares_the_colon_with_its_label():
    # 大写金额： and ：玖佰捌拾壹元整 overlap by the colon both boxes hold; the row runs on
    # into the next column's value (s817, a tilted phone photo).
    lines = [OcrLine(text="大写金额：", confidence=0.92,
                     polygon=[(300, 1238), (405, 1238), (405, 1276), (300, 1276)]),
             OcrLine(text="：玖佰捌拾壹元整", confidence=0.94,
                     polygon=[(387, 1247), (558, 1247), (558, 1299), (387, 1299)]),
             OcrLine(text="6217685281083828", confidence=0.99,
                     polygon=[(741, 1250), (912, 1250), (912, 1290), (741, 1290)])]
    assert _values(lines)["claim_amount_in_words"] == "玖佰捌拾壹元整"


def test_an_institutions_name_wrapped_in_its_cell_keeps_its_last_line():
    # 中国邮政储蓄银行锡林郭勒太仆寺 / 支行 under 收款银行, and □其他 of the other
    # column's wrapped check boxes on the same row, left of the label (s818, form 23).
    lines = [_line("与出险人关系：", 81, 665, 38), _line("收款银行：", 622, 705, 40),
             _line("□其他", 77, 739, 49), _line("中国邮政储蓄银行锡林郭勒太仆寺", 620, 742, 46, 32),
             _line("支行", 619, 791, 40), _line("银行账号：", 620, 860, 40)]
    got = _values(lines)
    assert got["bank_name"] == "中国邮政储蓄银行锡林郭勒太仆寺支行"
    # a name that is whole keeps no line from under it
    whole = [_line("开户银行：中国工商银行北京分行", 50, 100), _line("分行", 50, 140)]
    assert _values(whole)["bank_name"] == "中国工商银行北京分行"


def _box(text: str, x0: float, y0: float, x1: float, y1: float) -> OcrLine:
    return OcrLine(text=text, confidence=0.97, polygon=[(x0, y0), (x1, y0), (x1, y1), (x0, y1)])


def test_prose_that_starts_or_holds_a_label_word_is_no_label():
    # The 出险经过 narrative of a two-column form (s825, forms 17 and 23): "，被保险人体检…"
    # and "被保险人于2026.08.07下午因…" are sentences, above the real label.
    lines = [_box("事故经过描述：", 609, 515, 797, 552),
             _box("2025.11.17，被保险人体检发现异常，", 607, 554, 1102, 587),
             _box("被保险人于2026.08.07下午因身体不适", 829, 901, 1100, 943),
             _box("被保险人名称：德吉", 148, 948, 410, 989)]
    assert _values(lines)["insured_name"] == "德吉"


def test_a_name_is_never_words_around_a_number():
    from ocr.extract.normalise import normalise

    assert normalise("insured_name", "于2026.08.07下午因身体不适") is None
    assert normalise("insured_name", "张三 ") == "张三"


def test_the_value_under_a_label_not_the_next_columns_narrative_beside_it():
    # 申请人名称 / 尚倩 in the left column; the right column's narrative runs on the
    # same rows (s825, form 17).
    lines = [_box("申请人名称:", 105, 583, 266, 621),
             _box("进一步检查后住院治疗。先在昆明市第", 609, 585, 1105, 619),
             _box("尚倩", 105, 619, 173, 656),
             _box("一人民医院作初步处理，11月20日转至", 613, 621, 1109, 662),
             _box("与被保险人的关系：", 103, 663, 354, 705)]
    assert _values(lines)["claimant_name"] == "尚倩"


def test_a_tall_written_value_in_a_corner_box_under_a_heading_free_label():
    # Labels in the top-left corner of their boxes, the written value below overlapping
    # the label's box a little, and a section heading next (s825, form 22).
    lines = [_box("申请人（受益人）", 97, 447, 299, 505), _box("樊熠", 100, 490, 173, 543),
             _box("联系方式", 101, 552, 216, 592), _box("132 1784 1171", 103, 588, 325, 636),
             _box("被保人姓名", 101, 705, 236, 751), _box("樊熠", 98, 739, 175, 798),
             _box("事故及就诊信息", 101, 808, 312, 851)]
    got = _values(lines)
    assert got["insured_name"] == "樊熠" and got["claimant_name"] == "樊熠"
    # the heading alone under a label is no value
    assert _values([_box("被保人姓名", 101, 705, 236, 751),
                    _box("事故及就诊信息", 101, 760, 312, 800)]).get("insured_name") is None


def test_a_value_whose_box_overlaps_its_labels_by_under_half_a_line():
    # 户名 / 施逸刚 on a phone photo (s825 photo 16): the boxes overlap by 14 px of 34.
    lines = [_box("户名", 1128, 1235, 1185, 1269), _box("施逸刚", 1122, 1255, 1219, 1314),
             _box("账号", 1128, 1330, 1185, 1364)]
    assert _values(lines)["account_name"] == "施逸刚"


def test_a_name_keeps_the_characters_mainland_names_are_written_with():
    # OpenCC folds 麴 to 曲 (a traditional form, in other words); as a surname it is
    # printed as it is. A traditional form outside GB 2312 (禎) is still folded.
    assert _values([_line("被保险人姓名：麴文", 50, 100)])["insured_name"] == "麴文"
    assert _values([_line("被保险人姓名：方刚禎", 50, 100)])["insured_name"] == "方刚祯"


def test_a_name_is_scored_by_its_own_characters():
    probs = [1.0] * 7 + [0.99, 0.33, 0.98]
    line = OcrLine(text="被保险人姓名：龚翻一", confidence=0.93, char_probs=probs,
                   polygon=[(50, 100), (350, 100), (350, 130), (50, 130)])
    got = extract_claim_form([line])["insured_name"]
    assert got.value == "龚翻一" and got.confidence == 0.33
    # without per-character probabilities, the line's score
    plain = line.model_copy(update={"char_probs": []})
    assert extract_claim_form([plain])["insured_name"].confidence == 0.93


def test_a_diagnosis_s_doubted_character_is_weighed_by_the_words_it_makes():
    """Seed 721, photo 0009: 右膝前交叉韧带损伤 with 叉 at 0.75 (又 0.19, 义 0.06) went to
    a person, though 交叉 is a word and 交又 is none. A misread that makes no word
    (大咬伤 for 犬咬伤) is not raised; one that breaks a word its candidate makes is
    lowered."""
    from ocr.lexicon import LEXICON_NOTE

    def diagnosis(value: str, at: int, cands: list[tuple[str, float]]):
        text = "疾病诊断：" + value
        probs = [1.0] * len(text)
        alts = [[(c, 1.0)] for c in text]
        probs[5 + at], alts[5 + at] = cands[0][1], cands
        line = OcrLine(text=text, confidence=0.97, char_probs=probs, alternatives=alts,
                       polygon=[(50, 100), (50 + 30 * len(text), 100),
                                (50 + 30 * len(text), 130), (50, 130)])
        return extract_claim_form([line])["diagnosis"]

    right = diagnosis("右膝前交叉韧带损伤", 4, [("叉", 0.749), ("又", 0.19), ("义", 0.06)])
    assert right.value == "右膝前交叉韧带损伤" and right.confidence > 0.95
    assert right.corrections == [LEXICON_NOTE]
    broken = diagnosis("右膝前交又韧带损伤", 4, [("又", 0.6), ("叉", 0.35)])
    assert broken.value == "右膝前交又韧带损伤" and broken.confidence < 0.6
    misread = diagnosis("大咬伤", 0, [("大", 0.61), ("犬", 0.35)])
    assert misread.confidence <= 0.61 and misread.corrections == []


def test_a_name_is_never_a_row_of_check_boxes_a_label_or_a_ticked_option():
    from ocr.extract.normalise import normalise

    assert normalise("insured_name", "□伤残 □身故") is None  # s827 form 17
    assert normalise("insured_name", "伤残身故") is None
    assert normalise("claimant_name", "受益人") is None  # s827 photo 23
    assert normalise("claimant_name", "尹韡镕本人") == "尹韡镕"  # s826 form 18
    assert normalise("claimant_name", "尹韡镕 ☑本人") is None
    assert normalise("claimant_name", "王本人") == "王本人"  # too short to hold an option


def test_a_label_on_the_next_columns_row_takes_its_value_from_under_it_not_from_the_narrative():
    # 被保险人证件号码： with the right column's narrative half a line lower (s826 form 17).
    lines = [_box("被保险人证件号码：", 66, 820, 279, 851),
             _box("犬咬伤，后至黔东南苗族侗族自治州中", 602, 837, 1111, 868),
             _box("522624200011018219", 68, 855, 399, 890),
             _box("心医院复查。住院治疗34天，于9月25", 600, 870, 1116, 910)]
    assert _values(lines)["insured_id_number"] == "522624200011018219"


def test_a_label_run_on_after_a_number_ends_where_its_characters_do():
    # 181 4659 9201 与被保人关系： in one box, 配偶 in a box overlapping its end: digits are
    # half as wide as Chinese characters (s826 form 13).
    lines = [_box("联系电话：", 107, 658, 251, 691),
             _box("181 4659 9201 与被保人关系：", 375, 658, 900, 689),
             _box("配偶", 886, 656, 961, 689)]
    got = _values(lines)
    assert got["relationship"] == "配偶" and got["phone"] == "18146599201"


def test_a_wrapped_row_of_options_whose_ticked_box_was_not_read():
    # □本人 口配偶 □子女 □父母 / 其他: the ticked box of 其他 read as nothing (s827 form 5).
    lines = [_box("与被保人关系：", 63, 820, 262, 851),
             _box("□本人 口配偶 □子女 □父母", 63, 853, 507, 890), _box("其他", 65, 886, 164, 925)]
    assert _values(lines)["relationship"] == "其他"


def test_a_value_centred_on_a_label_wrapped_over_two_lines():
    # 申请金额 / （大写） and the amount in words between them (s827 form 12).
    lines = [_box("申请金额", 103, 1103, 252, 1163), _box("贰万壹仟柒佰伍拾壹元贰角贰分", 359, 1133, 866, 1177),
             _box("(大写)", 121, 1155, 231, 1208), _box("索赔金额", 103, 1218, 249, 1269),
             _box("21,751.22", 354, 1245, 527, 1289), _box("(小写)", 118, 1260, 231, 1316)]
    got = _values(lines)
    assert got["claim_amount_in_words"] == "贰万壹仟柒佰伍拾壹元贰角贰分"
    assert got["claim_amount"] == "21751.22"


def test_a_bank_name_keeps_the_yin_of_a_place():
    from ocr.extract.normalise import normalise

    assert normalise("bank_name", "兴业银行铁岭银州支行") == "兴业银行铁岭银州支行"  # s831
    assert normalise("bank_name", "中国工商银北京分行") == "中国工商银行北京分行"


def test_a_value_centred_far_right_in_its_cell_above_the_next_label_of_the_column():
    # A grid: 手机： alone on its row, its number centred in a wide cell under it; the
    # next label of the column (理赔类型：) has its ticked boxes under it, at the label's x.
    lines = [_line("手机：", 150, 663, h=56), _line("153-3300-5082", 687, 731, h=41, char_w=23),
             _line("理赔类型：", 150, 786, h=60), _line("索赔金额（小写）：", 1078, 797, h=41),
             _line("☑医疗费用 ☑住院津贴 伤残 身故", 150, 845, h=64, char_w=40),
             _line("1,512.81", 1206, 853, h=53, char_w=23)]
    got = _values(lines)
    assert got["phone"] == "15333005082"
    assert got["claim_amount"] == "1512.81"


def test_a_relationship_under_a_label_read_by_its_words_is_its_value_not_its_tail():
    # 与出险人关系 (no table label) with 本人 under it: not one label wrapped over two lines.
    lines = [_line("申请人名称", 105, 682, h=49), _line("与出险人关系", 1157, 687, h=42),
             _line("麴翾", 119, 732, h=63, char_w=50), _line("本人", 1172, 741, h=53, char_w=50)]
    got = _values(lines)
    assert got["relationship"] == "本人"
    assert got["claimant_name"] == "麴翾"


def test_the_narrative_beside_a_label_is_no_policy_number_and_no_name():
    # Two columns: labels with their values under them on the left; the 出险经过
    # paragraph on the right runs level with them (s831).
    lines = [_line("保单合同号：", 89, 601, h=33), _line("2023-06-10中午，被保险人在家中不", 629, 601, h=35),
             _line("P205105046153718", 90, 638, h=31, char_w=16),
             _line("出险人：", 85, 694, h=40), _line("断为右股骨颈骨折。", 629, 712, h=39),
             _line("殷金", 87, 731, h=42, char_w=40)]
    got = _values(lines)
    assert got["policy_number"] == "P205105046153718"
    assert got["insured_name"] == "殷金"


@pytest.mark.parametrize(("field", "text"), [
    ("policy_number", "2023-06-10"), ("policy_number", "2023年6月10日出险"),
    ("policy_number", "于2023.06.10，在家中"), ("insured_name", "断为右股骨颈骨折。"),
    ("claimant_name", "被保险人在家中不慎摔倒"), ("account_name", "王芳，李明")])
def test_what_is_no_policy_number_or_name(field, text):
    assert normalise(field, text) is None


def test_names_and_policy_numbers_still_read():
    assert normalise("policy_number", "PA-2024-000123") == "PA-2024-000123"
    assert normalise("insured_name", "爱新觉罗·恒山") == "爱新觉罗·恒山"
    assert normalise("claimant_name", "欧阳安彤") == "欧阳安彤"


def test_a_grid_value_right_of_its_column_beside_the_next_rows_boxes_and_instructions():
    # 大写： with its words under and right of it; the boxes under it are 理赔类型's row.
    # 递交日期： with its date centred far right; under it the form's 填写说明 (s831).
    lines = [_line("申请理赔金额：", 105, 796, h=45), _line("大写：", 458, 798, h=42),
             _line("2,728.47", 218, 844, h=38, char_w=14),
             _line("贰仟柒佰贰拾捌元肆角柒分", 661, 846, h=31, char_w=25),
             _line("理赔类型：", 107, 886, h=40), _line("☑医疗费用", 107, 930, h=38),
             _line("占 □重大疾病 □身故", 400, 928, h=41, char_w=26),
             _line("递交日期：", 105, 1313, h=45), _line("2026.03.27", 563, 1363, h=33, char_w=14),
             _line("填写说明：请如实、完整填写各项内容。", 101, 1423, h=26, char_w=24)]
    got = _values(lines)
    assert got["claim_amount"] == "2728.47"
    assert got["claim_amount_in_words"] == "贰仟柒佰贰拾捌元肆角柒分"
    assert got["application_date"] == "2026-03-27"


def test_both_amounts_on_one_line_the_words_after_a_bare_daxie_label():
    # 申请金额（元）：人民币47,834.25元 大写:肆万… on one line (s834).
    lines = [_line("申请金额（元）：人民币47,834.25元 大写:肆万柒仟捌佰叁拾肆元贰角伍分", 107, 1173, h=35,
                   char_w=24)]
    got = _values(lines)
    assert got["claim_amount"] == "47834.25"
    assert got["claim_amount_in_words"] == "肆万柒仟捌佰叁拾肆元贰角伍分"


def test_a_whole_label_over_the_forms_instructions_is_not_wrapped_into_them():
    # 递交日期 (its date to the right) over 填写说明：… (s835): two lines, not one label.
    lines = [_line("递交日期", 79, 1297, h=48), _line("2025-01-15", 303, 1301, h=44, char_w=17),
             _line("填写说明：请如实、完整填写各项内容。", 74, 1372, h=37, char_w=27)]
    assert _values(lines)["application_date"] == "2025-01-15"


def test_renminbi_daxie_in_brackets_is_the_label_of_the_words_under_it():
    # 人民币（大写） over its words: the bracketed 大写 qualifies the label (s839).
    lines = [_line("申请金额（小写）", 114, 948, h=37), _line("人民币（大写）", 544, 950, h=33),
             _line("人民币4,092.79元", 112, 985, h=42, char_w=20),
             _line("肆仟零玖拾贰元柒角玖分", 540, 986, h=43, char_w=28)]
    got = _values(lines)
    assert got["claim_amount"] == "4092.79"
    assert got["claim_amount_in_words"] == "肆仟零玖拾贰元柒角玖分"


def test_a_row_of_values_under_a_row_of_labels_far_apart_is_read_cell_by_cell():
    # 被保险人名称： | 性别： | 出险人身份证号：, the values under them; 男 as far from the
    # name's label as from its own: the ID number far right keeps the row whole (s843).
    lines = [_line("性别：", 566, 305, h=40), _line("出险人身份证号：", 840, 307, h=31, char_w=25),
             _line("被保险人名称：", 181, 307, h=37, char_w=25),
             _line("钟离安伟", 109, 349, h=40, char_w=28), _line("男", 443, 349, h=44, char_w=35),
             _line("532326196404165876", 781, 356, h=26, char_w=14)]
    got = _values(lines)
    assert got["insured_name"] == "钟离安伟"
    assert got["insured_id_number"] == "532326196404165876"


def test_a_wrapped_label_with_its_value_centred_on_both_lines():
    """与出险人 / 关系： in a narrow cell, 本人 centred beside the two lines: one label
    (s845: 与出险人 alone read as the insured's label, and 本人 as their name)."""
    lines = [_line("申请人姓名：", 105, 375, 42, 24), _line("孙丹兰", 282, 368, 55),
             _line("与出险人", 636, 354, 45, 28), _line("本人", 795, 367, 53, 39),
             _line("关系：", 648, 389, 42, 25),
             _line("出险人姓名：", 614, 510, 38, 24), _line("孙丹兰", 793, 502, 54, 37)]
    got = _values(lines)
    assert got["relationship"] == "本人"
    assert got["insured_name"] == "孙丹兰"
    assert got["claimant_name"] == "孙丹兰"


def test_a_whole_label_is_not_wrapped_into_the_note_under_it():
    """开户网点 over 注：请用黑色签字笔填写: not the label 开户网点注 (s845)."""
    lines = [_line("开户网点", 177, 1386, 61, 41), _line("中国工商银行锡林郭勒分行", 414, 1391, 49, 40),
             _line("注：请用黑色签字笔填写，字迹清晰，不得涂改。", 113, 1496, 44, 33)]
    assert _values(lines)["bank_name"] == "中国工商银行锡林郭勒分行"


def test_a_label_printed_before_its_value_without_a_colon():
    """医院名称 | 云南省人民医院 | 事故发生时间 2024-01-14 (one line for the last two,
    no colon): the hospital ends before the label, the date is the label's (s846)."""
    lines = [_line("医院名称", 112, 751, 36, 25), _line("云南省人民医院", 261, 748, 38, 26),
             _line("事故发生时间 2024-01-14", 533, 750, 35, 16)]
    got = _values(lines)
    assert got["hospital"] == "云南省人民医院"
    assert got["accident_date"] == "2024-01-14"


def test_a_name_under_its_label_with_the_next_cells_boxes_beside_it():
    """申请人（受益人）： over 于家春, the relationship's boxes under the next label but
    nearer this one: the name alone (s846)."""
    lines = [_line("申请人（受益人）：", 77, 421, 30, 20), _line("与被保人关系：", 426, 420, 34, 19),
             _line("手机：", 791, 421, 35, 20),
             _line("于家春", 65, 461, 39, 28), _line("□本人", 287, 467, 27, 18),
             _line("■配偶 □父母 □子女 □其他", 357, 467, 29, 20),
             _line("17866284166", 725, 465, 31, 14)]
    got = _values(lines)
    assert got["claimant_name"] == "于家春"
    assert got["relationship"] == "配偶"
    assert got["phone"] == "17866284166"


def test_two_columns_whose_rows_do_not_line_up_keep_each_value_under_its_label():
    """Values under their labels, in two columns whose rows are offset: the right
    column's date lies on the row of the left column's label (seed 876, 事故发生日期 was
    given 申请日期's 2025-05-22)."""
    lines = [_line("申请日期:", 637, 906), _line("2025年05月22日", 646, 939, char_w=16),
             _line("事故发生日期:", 118, 934), _line("2025年05月02日", 131, 970, char_w=16)]
    got = _values(lines)
    assert got["accident_date"] == "2025-05-02"
    assert got["application_date"] == "2025-05-22"
    # The same date right of the label, with no label over it, is the label's own.
    assert _values([_line("事故发生日期:", 118, 934), _line("2025年05月02日", 646, 939,
                                                          char_w=16)])["accident_date"] == (
        "2025-05-02")


def test_an_option_behind_an_empty_box_is_never_the_relationship():
    """A row of options split by the detector whose tick was read as an empty box: the
    option alone after its own empty box (□子女) was taken for the relationship at
    0.999 and went straight through (seed 877; 其他 was ticked)."""
    lines = [_line("与被保险人关系:□本人 □配偶", 94, 436, char_w=20),
             _line("□子女", 410, 439, char_w=20), _line("口其他", 580, 440, char_w=20)]
    assert _values(lines).get("relationship") is None
    assert normalise("relationship", "□子女") is None
    assert normalise("relationship", "☑子女") == "子女"
    assert normalise("relationship", "子女") == "子女"
