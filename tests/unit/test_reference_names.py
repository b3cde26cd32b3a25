"""A case reference that names a member is refused (it is shown as given): which do."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.verification import name_in


@pytest.mark.parametrize(
    ("reference", "names", "named"),
    [
        ("张三丰的申请", ("李四", "张三丰"), 2),
        ("case 张 三丰", ("张三丰",), 1),
        ("ＣＡＳＥ－张三丰", ("张三丰",), 1),  # full width
        ("ZHANG-san-feng 2026", ("Zhang San Feng",), 1),
        ("zhangsanfeng-1", ("Zhang San Feng",), 1),
        ("case-li-2026", ("Li",), 1),
        ("阿依古丽买买提-1", ("阿依古丽·买买提",), 1),
        # Written apart (dots, dashes and what looks like them, 、 / |), in either script.
        ("王、强 moved out", ("王强",), 1),
        ("张/三丰", ("张三丰",), 1),
        ("张ꞏ三丰 张ー三丰", ("张三丰",), 1),
        ("张\u3164三丰", ("张三丰",), 1),  # a blank Hangul filler
        ("户主张−三│丰 ㅡ", ("张三丰",), 1),  # a minus, a box-drawing bar
        ("张ㅡ三ꓸ丰", ("张三丰",), 1),  # letters of other scripts that look like a dash, a dot
        ("张\u034f三\ufe00丰", ("张三丰",), 1),  # a joiner and a selector, which show nothing
        ("張三豐的申请", ("张三丰",), 1),
        ("张三丰的申请", ("張三豐",), 1),
        ("陳、小明 bought a car", ("陈小明",), 1),
        # Not across a clause's punctuation, which ordinary notes hold.
        ("家庭收入不高，平时靠打零工维持生活。", ("高平",), None),
        ("李一鸣家 2026", ("李鸣",), None),
        # Not names: a Latin name is found as whole words only, a one-character one never.
        ("carolina-2026", ("Li Na",), None),
        ("client-2026", ("Li",), None),
        ("Sammüller-7", ("Müller",), None),
        ("case-müller-7", ("Müller",), 1),
        ("王府井-001", ("王",), None),
        ("case-2026-000123", ("张三", "李四"), None),
    ],
)
def test_a_reference_names_a_member(
    reference: str, names: tuple[str, ...], named: int | None
) -> None:
    assert name_in(reference, names) == named


@given(
    st.text(alphabet="张王李赵刘陈杨黄三四五丰娜丽", min_size=2, max_size=4),
    st.text(alphabet="abc-_ 0123", max_size=10),
    st.text(alphabet="abc-_ 0123", max_size=10),
)
def test_a_chinese_name_anywhere_in_a_reference_is_found(
    name: str, before: str, after: str
) -> None:
    assert name_in(f"{before}{name}{after}", [name]) == 1
