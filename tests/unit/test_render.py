"""hedui verify's text report: wrapped at the terminal's width, never inside a code or number."""

import io
import re

from hypothesis import given
from hypothesis import strategies as st
from rich.cells import cell_len
from rich.console import Console

from service.report.render import render_report, wrap

CODE = st.from_regex(r"[a-z]{2,12}(_[a-z]{2,12}){1,3}", fullmatch=True)
AMOUNT = st.from_regex(r"[1-9][0-9]{0,6}\.[0-9]{2}", fullmatch=True)
FACT = st.builds(lambda name, value: f"{name}={value}", CODE, AMOUNT)
HANZI = st.text(st.characters(min_codepoint=0x4E00, max_codepoint=0x4FFF), min_size=1, max_size=9)
WORD = st.one_of(CODE, AMOUNT, FACT, HANZI, st.sampled_from(["元，", "人。", "（24", "×", "−"]))
ATOMIC = re.compile(r"[^\s\u2e80-\u9fff\uff00-\uffef\u3000-\u303f]+")


@given(words=st.lists(WORD, min_size=1, max_size=40), width=st.integers(20, 120))
def test_wrap_breaks_only_between_words(words: list[str], width: int) -> None:
    text = " ".join(words)

    lines = wrap(text, width)

    assert "".join(lines).replace(" ", "") == text.replace(" ", "")
    within = {token for line in lines for token in ATOMIC.findall(line)}
    assert set(ATOMIC.findall(text)) <= within
    for line in lines:
        assert cell_len(line) <= width or ATOMIC.fullmatch(line), line


def linshi_report(**changes: object) -> dict[str, object]:
    report: dict[str, object] = {
        "verification_id": "0b8f2f43-2f6e-4c3e-9a52-6b1d2f0c9e11",
        "recommendation": "eligible",
        "score": 95,
        "complete": True,
        "policy": {"version": "53/linshi/urban@2020-06-01", "monthly_standard": "640.00"},
        "household": {
            "members": 2,
            "monthly_income": "200.00",
            "per_capita_monthly_income": "100.00",
            "financial_assets": "1234567.89",
            "vehicles": 0,
            "properties": 0,
        },
        "benefit": {
            "monthly_amount": "0.00",
            "one_off_amount": "3240.00",
            "basis": "一次性救助：(640.00 元 × 2 人 − 家庭月收入 200.00 元) × 3 个月 = 3240.00 "
            "元，上限 无上限，发放 3240.00 元",
        },
        "sources": [
            {"source": "bank", "status": "ok"},
            {"source": "housing_fund", "status": "failed", "detail": "timeout after 10.00 s"},
        ],
        "findings": [
            {
                "severity": "info",
                "code": "income_below_standard",
                "message": "家庭月收入 200.00 元，2 人，人均 100.00 元，低于标准 640.00 元。",
                "evidence": [
                    {
                        "source": "pensions",
                        "member": "530103********123X",
                        "fact": "pension status=receiving monthly_amount=300.00",
                    }
                ],
            },
            {
                "severity": "warning",
                "code": "financial_assets_above_limit_per_capita",
                "message": "家庭金融资产1234567.89元，人均617283.95元，"
                "超过人均15360.00元（24个月标准）的限额。",
                "evidence": [],
            },
        ],
    }
    report.update(changes)
    return report


def rendered(report: dict[str, object], language: str, width: int = 80) -> str:
    console = Console(file=io.StringIO(), width=width, color_system=None)
    render_report(console, report, language)
    output = console.file.getvalue()  # type: ignore[attr-defined]
    assert isinstance(output, str)
    return output


class TestRenderReport:
    def test_a_one_off_payment_is_shown_with_its_basis(self) -> None:
        output = rendered(linshi_report(), "zh")

        assert re.search(r"^  一次性救助金 +3240\.00$", output, re.MULTILINE)
        assert "每月救助金" not in output
        assert "(640.00 元 × 2 人" in output

    def test_a_monthly_benefit_shows_its_amount_and_care_subsidy(self) -> None:
        benefit = {
            "monthly_amount": "1667.00",
            "care_subsidy": "835.00",
            "basis": "832.00 × 1 − 0.00 = 832.00 yuan\ncare subsidy 835.00\n= 1667.00 yuan",
        }
        output = rendered(linshi_report(benefit=benefit), "en")

        assert re.search(r"^  monthly benefit +1667\.00$", output, re.MULTILINE)
        assert re.search(r"^  care subsidy \(monthly\) +835\.00$", output, re.MULTILINE)
        assert "one-off" not in output

    def test_headings_follow_the_language(self) -> None:
        english, chinese = rendered(linshi_report(), "en"), rendered(linshi_report(), "zh")

        assert "recommendation" in english
        assert "Findings" in english
        assert "建议" in chinese
        recommendation = linshi_report()["recommendation"]
        assert re.search(rf"建议 +\S+ \({recommendation}\)", chinese)  # in words, then its code
        assert "核对发现" in chinese
        assert "recommendation" not in chinese

    def test_no_code_or_number_is_split_at_80_columns(self) -> None:
        report = linshi_report()
        values = " ".join(_strings(report))
        codes = {finding["code"] for finding in report["findings"]}  # type: ignore[attr-defined]
        numbers = set(re.findall(r"\d+(?:\.\d+)?", values))

        lines = rendered(report, "zh").splitlines()

        assert max(cell_len(line) for line in lines) <= 80
        for whole in codes | numbers:
            assert any(whole in line for line in lines), whole
        # Every number and code printed is a whole one from the report, never a fragment.
        printed = [
            t for line in lines for t in re.findall(r"\d+(?:\.\d+)?|[a-z]+(?:_[a-z]+)+", line)
        ]
        assert {t for t in printed if t[0].isdigit()} <= numbers
        assert {t for t in printed if "_" in t} <= set(re.findall(r"[a-z]+(?:_[a-z]+)+", values))


def _strings(value: object) -> list[str]:
    if isinstance(value, dict):
        return [s for item in value.values() for s in _strings(item)]
    if isinstance(value, list):
        return [s for item in value for s in _strings(item)]
    return [str(value)]
