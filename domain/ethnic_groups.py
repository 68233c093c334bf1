"""The ethnic groups (民族) printed on resident identity cards: one list for the rule that
checks a card's ethnicity and the decoder that reads it.

>>> ethnic_group("汉"), ethnic_group("维吾尔族"), ethnic_group("汊")
('汉', '维吾尔', None)
>>> len(ETHNIC_GROUPS)
58
"""

from __future__ import annotations

__all__ = ["ETHNIC_GROUPS", "ethnic_group"]

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
