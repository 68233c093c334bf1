"""The ethnic groups (民族) printed on resident identity cards: one list for the rule that
checks a card's ethnicity and the decoder that reads it.

>>> ethnic_group("汉"), ethnic_group("维吾尔族"), ethnic_group("汊")
('汉', '维吾尔', None)
>>> len(ETHNIC_GROUPS)
58
"""

from __future__ import annotations

import math

__all__ = ["ETHNIC_GROUPS", "ETHNIC_POPULATION", "ethnic_group", "ethnic_log_prior"]

# The 56 recognised ethnic groups as printed on cards (without 族), and the two
# undetermined groups printed as such in Guizhou.
ETHNIC_GROUPS = frozenset(
    "汉 蒙古 回 藏 维吾尔 苗 彝 壮 布依 朝鲜 满 侗 瑶 白 土家 哈尼 哈萨克 傣 黎 傈僳 佤 畲 高山 "  # noqa: SIM905
    "拉祜 水 东乡 纳西 景颇 柯尔克孜 土 达斡尔 仫佬 羌 布朗 撒拉 毛南 仡佬 锡伯 阿昌 普米 塔吉克 "
    "怒 乌孜别克 俄罗斯 鄂温克 德昂 保安 裕固 京 塔塔尔 独龙 鄂伦春 赫哲 门巴 珞巴 基诺 "
    "穿青人 革家人".split()
)


def ethnic_group(value: str) -> str | None:
    """The group ``value`` names (a trailing 族 tolerated), or None when it names none."""
    name = value[:-1] if value.endswith("族") and value[:-1] in ETHNIC_GROUPS else value
    return name if name in ETHNIC_GROUPS else None


#: Each group's people in thousands, from the seventh national census (2020; rounded:
#: the order of magnitude is what counts). The two undetermined groups, counted among
#: the census's 未识别民族, are given their usual estimates.
ETHNIC_POPULATION: dict[str, float] = {
    "汉": 1286311, "壮": 19569, "维吾尔": 11775, "回": 11378, "苗": 11067, "满": 10423,
    "彝": 9830, "土家": 9588, "藏": 7061, "蒙古": 6290, "布依": 3577, "侗": 3495,
    "瑶": 3309, "白": 2091, "哈尼": 1733, "朝鲜": 1702, "黎": 1602, "哈萨克": 1562,
    "傣": 1329, "东乡": 775, "傈僳": 762, "畲": 746, "仡佬": 677, "拉祜": 499, "水": 496,
    "佤": 430, "纳西": 323, "羌": 313, "土": 281, "仫佬": 277, "柯尔克孜": 204, "锡伯": 191,
    "撒拉": 165, "景颇": 160, "达斡尔": 132, "布朗": 127, "毛南": 124, "塔吉克": 51,
    "普米": 45, "阿昌": 43, "怒": 37, "鄂温克": 35, "京": 33, "基诺": 26, "保安": 24,
    "德昂": 22, "俄罗斯": 16, "裕固": 15, "乌孜别克": 12, "门巴": 11, "鄂伦春": 9,
    "独龙": 7, "赫哲": 5, "珞巴": 4, "塔塔尔": 4, "高山": 4, "穿青人": 670, "革家人": 60,
}


_PEOPLE = sum(ETHNIC_POPULATION.values())


def ethnic_log_prior(group: str) -> float:
    """The natural log of ``group``'s share of the population (:data:`ETHNIC_POPULATION`):
    what a reader knows before looking at a blurred 民族 cell, that 汉 is printed on
    nine cards in ten. -inf for a name that is no group.

    >>> round(ethnic_log_prior("汉"), 2), round(ethnic_log_prior("京"), 1)
    (-0.09, -10.7)
    """
    people = ETHNIC_POPULATION.get(group)
    if people is None:
        return float("-inf")
    return math.log(people / _PEOPLE)
