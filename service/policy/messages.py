"""The message catalogue: finding codes and score lines in Chinese (default) and English.

Only wording lives here. Rules and the scorer produce codes and formatted arguments; the
language chosen changes message text, score reasons and the benefit's basis, nothing else.
"""

from collections.abc import Mapping

from schemas.identity import redact_id_numbers
from schemas.report import EvidenceRef, Finding
from service.policy.findings import RuleFinding

LANGUAGES = ("zh", "en")

FINDINGS: Mapping[str, Mapping[str, str]] = {
    "placeholder_standard": {
        "zh": "所用标准 {standard} 元为系统默认占位值（{version}），并非本地公布的标准，"
        "需人工按本地标准复核。",
        "en": "The standard {standard} yuan is a placeholder default ({version}), not a "
        "published local standard; review against the local standard.",
    },
    "source_incomplete": {
        "zh": "数据来源“{source}”未返回可靠结果（状态：{status}），核对不完整，需人工复核。",
        "en": "Source '{source}' gave no reliable answer (status: {status}); "
        "the verification is incomplete and needs review.",
    },
    "no_sources": {
        "zh": "未向任何数据来源核对，核对不完整，需人工复核。",
        "en": "No partner source was checked; the verification is incomplete and needs review.",
    },
    "public_payroll_member": {
        "zh": "成员 {member} 为财政供养人员（{employer}），月工资 {amount} 元。",
        "en": "Member {member} is on public payroll ({employer}), monthly salary {amount} yuan.",
    },
    "business_legal_representative": {
        "zh": "成员 {member} 为企业“{company}”的法定代表人（注册资本 {capital} 元），"
        "可能有未申报的经营收入，需人工复核。",
        "en": "Member {member} is the legal representative of '{company}' (registered capital "
        "{capital} yuan) and may have undeclared business income; review.",
    },
    "business_shareholder": {
        "zh": "成员 {member} 持有企业“{company}”的股份，按注册资本折合 {stake} 元，"
        "不低于 {threshold} 元，需人工复核。",
        "en": "Member {member} holds a stake in '{company}' worth {stake} yuan by registered "
        "capital, at least the {threshold} yuan threshold; review.",
    },
    "business_minor_shareholder": {
        "zh": "成员 {member} 持有企业“{company}”的股份，按注册资本折合 {stake} 元，"
        "低于 {threshold} 元。",
        "en": "Member {member} holds a stake in '{company}' worth {stake} yuan by registered "
        "capital, below the {threshold} yuan threshold.",
    },
    "taxed_income_over_standard": {
        "zh": "成员 {member} {year} 年度应纳税所得额 {annual} 元，折合每月 {monthly} 元，"
        "高于 {limit} 元，需人工复核。",
        "en": "Member {member} was taxed on {annual} yuan of income in {year}, {monthly} yuan "
        "a month, above {limit} yuan; review.",
    },
    "social_insurance_base_over_standard": {
        "zh": "成员 {member} 正在缴纳社会保险（{employer}），缴费基数每月 {base} 元，"
        "高于 {limit} 元，可能有未申报的工资收入，需人工复核。",
        "en": "Member {member} is paying social-insurance contributions ({employer}) on a "
        "monthly base of {base} yuan, above {limit} yuan, and may have undeclared wages; review.",
    },
    "social_insurance_contributing": {
        "zh": "成员 {member} 正在缴纳社会保险（{employer}），缴费基数每月 {base} 元。",
        "en": "Member {member} is paying social-insurance contributions ({employer}) on a "
        "monthly base of {base} yuan.",
    },
    "taxed_income": {
        "zh": "成员 {member} {year} 年度应纳税所得额 {annual} 元，折合每月 {monthly} 元。",
        "en": "Member {member} was taxed on {annual} yuan of income in {year}, {monthly} yuan "
        "a month.",
    },
    "tekun_working_member": {
        "zh": "成员 {member} 有工作的记录（{sources}：工资、在缴住房公积金或财政供养），"
        "即有劳动收入或赡养能力，不符合特困供养条件。",
        "en": "Member {member} shows paid work ({sources}: a salary, an active housing fund or "
        "a public payroll job), i.e. work income or a supporter; tekun support requires neither.",
    },
    "tekun_working_age": {
        "zh": "成员 {member} 现年 {age} 岁，处于劳动年龄（16 至 59 岁）。特困人员须无劳动能力，"
        "核对数据无法证明其丧失劳动能力（如残疾），需人工复核。",
        "en": "Member {member} is {age}, of working age (16 to 59). Tekun support requires no "
        "ability to work, which no partner's records can show (a disability, for example); "
        "review.",
    },
    "tekun_pension_contribution": {
        "zh": "成员 {member} 处于养老保险缴费状态。缴费不是收入，特困人员的城乡居民养老保险费"
        "常由地方政府代缴，不影响认定。",
        "en": "Member {member} is contributing to a pension. A contribution is not income, and "
        "local governments commonly pay the resident-pension contribution for destitute "
        "people; this does not affect the decision.",
    },
    "vehicle_over_threshold": {
        "zh": "成员 {member} 名下有机动车 {plate}（{type}），价值 {value} 元，"
        "高于 {threshold} 元的限额。",
        "en": "Member {member} owns vehicle {plate} ({type}) worth {value} yuan, "
        "above the {threshold} yuan limit.",
    },
    "vehicle_under_threshold": {
        "zh": "成员 {member} 名下有机动车 {plate}（{type}），价值 {value} 元，"
        "未高于 {threshold} 元的限额。",
        "en": "Member {member} owns vehicle {plate} ({type}) worth {value} yuan, "
        "not above the {threshold} yuan limit.",
    },
    "vehicle_value_unknown": {
        "zh": "成员 {member} 名下有机动车 {plate}（{type}），价值未知（未记录或记录为 0），"
        "需人工核实其价值后再作认定。",
        "en": "Member {member} owns vehicle {plate} ({type}) whose value is unknown (not "
        "recorded, or recorded as 0); its value needs review before any decision.",
    },
    "vehicle_exempt": {
        "zh": "成员 {member} 名下车辆 {plate}（{type}）属豁免类型，不影响认定。",
        "en": "Member {member}'s vehicle {plate} ({type}) is of an exempt type.",
    },
    "dwellings_over_limit": {
        "zh": "家庭名下有住宅 {count} 套，超过允许的 {limit} 套。",
        "en": "The household owns {count} dwellings; {limit} allowed.",
    },
    "non_residential_property": {
        "zh": "成员 {member} 名下有非住宅不动产（{usage}，{area_m2} 平方米），"
        "需人工复核其用途与收益。",
        "en": "Member {member} owns non-residential property ({usage}, {area_m2} m²); "
        "its use and any income need review.",
    },
    "assets_over_limit": {
        "zh": "家庭金融资产 {total} 元，人均 {per_capita} 元，"
        "高于人均 {limit} 元（{months} 个月标准）的限额。",
        "en": "Financial assets {total} yuan, {per_capita} per person, above the limit of "
        "{limit} per person ({months} months of the standard).",
    },
    "assets_within_limit": {
        "zh": "家庭金融资产 {total} 元，人均 {per_capita} 元，"
        "未超过人均 {limit} 元（{months} 个月标准）的限额。",
        "en": "Financial assets {total} yuan, {per_capita} per person, within the limit of "
        "{limit} per person ({months} months of the standard).",
    },
    "housing_fund_balance_not_counted": {
        "zh": "成员 {member} 的住房公积金余额 {balance} 元不计入金融资产（不能随时支取）。",
        "en": "Member {member}'s housing-fund balance of {balance} yuan is not counted as a "
        "financial asset (it is locked).",
    },
    "non_financial_asset": {
        "zh": "成员 {member} 名下有非金融资产（{category}），价值 {value} 元，不计入金融资产限额。",
        "en": "Member {member} holds a non-financial asset ({category}) worth {value} yuan, "
        "not counted toward the financial-asset limit.",
    },
    "income_below_standard": {
        "zh": "家庭月收入 {income} 元，{members} 人，人均 {per_capita} 元，"
        "低于标准 {standard} 元。",
        "en": "Household monthly income {income} yuan for a household of {members}, "
        "{per_capita} per person, below the {standard} yuan standard.",
    },
    "income_above_standard": {
        "zh": "家庭月收入 {income} 元，{members} 人，人均 {per_capita} 元，"
        "不低于标准 {standard} 元。",
        "en": "Household monthly income {income} yuan for a household of {members}, "
        "{per_capita} per person, not below the {standard} yuan standard.",
    },
    "declared_income_gap": {
        "zh": "成员 {member} 申报月收入 {declared} 元，核对所得 {verified} 元，"
        "相差 {gap_percent}%，超过 {limit_percent}%，需人工复核。",
        "en": "Member {member} declared {declared} yuan a month, records show {verified}: a "
        "{gap_percent}% gap, above {limit_percent}%; needs review.",
    },
    "near_relative_registered": {
        "zh": "成员 {member} 已在近亲属备案中登记（{position}的{relationship}），"
        "审批人须知悉并复核。",
        "en": "Member {member} is in the near-relative registry ({relationship} of a "
        "{position}); the approver must see this and review.",
    },
}

TEXTS: Mapping[str, Mapping[str, str]] = {
    "score_base": {"zh": "起始分", "en": "starting point"},
    "score_income_margin": {
        "zh": "人均收入低于标准的幅度（标准的 {percent}%）",
        "en": "margin below the standard ({percent}% of the standard)",
    },
    "score_clamp": {"zh": "分数限定在 0–100 之间", "en": "score kept within 0–100"},
    "benefit_top_up": {
        "zh": "{standard} 元 × {members} 人 − 家庭月收入 {income} 元 = {amount} 元",
        "en": "{standard} × {members} (household size) − household monthly income {income} "
        "= {amount} yuan",
    },
    "benefit_one_off": {
        "zh": "一次性救助：({standard} 元 × {members} 人 − 家庭月收入 {income} 元) × {months} 个月"
        " = {raw} 元，上限 {cap}，发放 {amount} 元",
        "en": "One-off: ({standard} × {members} (household size) − household monthly income "
        "{income}) × {months} months = {raw} yuan, cap {cap}, paid {amount} yuan",
    },
    "benefit_care_subsidy": {
        "zh": "照料护理补贴（{mode}，{grade} 档）{care} 元",
        "en": "care subsidy ({mode}, grade {grade}) {care} yuan",
    },
    "benefit_total": {
        "zh": "每月合计 {top_up} 元 + {care} 元 = {total} 元",
        "en": "monthly total {top_up} + {care} = {total} yuan",
    },
    "support_concentrated": {"zh": "集中供养", "en": "concentrated support"},
    "support_dispersed": {"zh": "分散供养", "en": "dispersed support"},
    "no_cap": {"zh": "无", "en": "none"},
}


# Enumerated values that appear inside messages, in each language (English is the value).
VALUE_LABELS: dict[str, dict[str, dict[str, str]]] = {
    "zh": {
        "relationship": {
            "spouse": "配偶",
            "parent": "父母",
            "child": "子女",
            "sibling": "兄弟姐妹",
            "grandparent": "祖父母/外祖父母",
            "grandchild": "孙子女/外孙子女",
            "in_law": "姻亲",
            "other": "其他亲属",
        },
    },
}


def _labelled(args: Mapping[str, str], language: str) -> dict[str, str]:
    labels = VALUE_LABELS.get(language, {})
    return {name: labels.get(name, {}).get(value, value) for name, value in args.items()}


def normalise_language(language: str) -> str:
    """'zh', 'zh-CN', 'en_US' → 'zh' / 'en'; anything else is an error, not a silent default."""
    primary = language.replace("_", "-").split("-", 1)[0].lower()
    if primary not in LANGUAGES:
        raise ValueError(f"unsupported language {language!r}; expected one of {LANGUAGES}")
    return primary


def text(key: str, language: str, **args: str) -> str:
    return redact_id_numbers(TEXTS[key][language].format(**args))


def render(finding: RuleFinding, language: str) -> Finding:
    """The finding with its message written in `language`.

    Every text is passed through the ID redactor once more: a full ID number must never
    reach a report, whatever a partner put into a free-text field.
    """
    message = FINDINGS[finding.code][language].format(**_labelled(finding.args, language))
    return Finding(
        code=finding.code,
        severity=finding.severity,
        message=redact_id_numbers(message),
        evidence=[_redacted(ref) for ref in finding.evidence],
    )


def _redacted(ref: EvidenceRef) -> EvidenceRef:
    """`ref` with its fact redacted; `ref` itself when that changes nothing (the usual
    case: facts are written redacted), not a copy of it (some 14 µs a household)."""
    fact = redact_id_numbers(ref.fact)
    if fact == ref.fact:
        return ref
    return EvidenceRef(source=ref.source, member=ref.member, fact=fact)
