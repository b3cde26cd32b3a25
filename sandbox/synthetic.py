"""Deterministic synthetic records for people nobody seeded.

Load tests query millions of random valid ID numbers; each one gets plausible records
derived from a SHA-256 of the ID number, so the same ID always yields the same answer at
every agency, in every process, without storing anything. Rates are rough public-practice
figures: most applicants own little. Amounts always have two decimals.
"""

import hashlib
import random
from datetime import date
from decimal import Decimal
from functools import lru_cache

from sandbox.records import (
    BankAccount,
    BusinessRole,
    HousingFund,
    Payroll,
    Pension,
    Person,
    Property,
    SocialInsurance,
    Tax,
    Usage,
    Vehicle,
    VehicleType,
)
from schemas.identity import id_number_problem

# Share of people with a record at each agency (payroll people always hold a housing fund,
# so the remaining 10 % of housing-fund accounts are drawn among the other 90 %).
PAYROLL_RATE = 0.10
HOUSING_FUND_RATE = 0.20
CAR_RATE = 0.15
MOTORCYCLE_RATE = 0.06
PENSION_RECEIVING_RATE = 0.30
PENSION_CONTRIBUTING_RATE = 0.25
PROPERTY_RATE = 0.60
SECOND_PROPERTY_RATE = 0.05
NO_BANK_ACCOUNT_RATE = 0.12
LARGE_BALANCE_RATE = 0.03
LEGAL_REPRESENTATIVE_RATE = 0.04
SHAREHOLDER_RATE = 0.07
TAXED_INCOME_RATE = 0.25
TAX_YEAR = 2025
SOCIAL_INSURANCE_RATE = 0.30

_PROVINCES = {
    "11": "京", "12": "津", "13": "冀", "14": "晋", "15": "蒙", "21": "辽", "22": "吉",
    "23": "黑", "31": "沪", "32": "苏", "33": "浙", "34": "皖", "35": "闽", "36": "赣",
    "37": "鲁", "41": "豫", "42": "鄂", "43": "湘", "44": "粤", "45": "桂", "46": "琼",
    "50": "渝", "51": "川", "52": "贵", "53": "云", "54": "藏", "61": "陕", "62": "甘",
    "63": "青", "64": "宁", "65": "新",
}  # fmt: skip
_PLATE_CHARS = "0123456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # plates skip I and O
_BANKS = (  # name, card BIN: accounts look like real debit-card numbers
    ("中国工商银行", "622202"),
    ("中国农业银行", "622848"),
    ("中国银行", "621661"),
    ("中国建设银行", "621700"),
    ("中国邮政储蓄银行", "621799"),
    ("农村信用合作联社", "622369"),
)
_EMPLOYERS = (
    "县人民医院",
    "市教育局",
    "县第一中学",
    "区财政局",
    "市公安局",
    "县自然资源局",
    "乡人民政府",
    "市疾病预防控制中心",
)
_COMPANY_KINDS = (
    "商贸有限公司",
    "农业专业合作社",
    "建筑工程有限公司",
    "餐饮管理有限公司",
    "运输有限公司",
)
_CREDIT_CODE_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # GB 32100 skips I, O, S, V, Z
_FIRST_REGISTRATION = date(2008, 1, 1).toordinal()
_LAST_REGISTRATION = date(2025, 12, 31).toordinal()


def _yuan(rng: random.Random, low: int, high: int) -> Decimal:
    """A uniform amount in [low, high] yuan, in whole fen."""
    return Decimal(rng.randint(low * 100, high * 100)).scaleb(-2)


def _province(id_number: str) -> str:
    return _PROVINCES.get(id_number[:2], "云")


def _vehicles(rng: random.Random, id_number: str) -> list[Vehicle] | None:
    vehicles = []
    kinds: tuple[tuple[VehicleType, float, int, int], ...] = (
        ("car", CAR_RATE, 20_000, 200_000),
        ("motorcycle", MOTORCYCLE_RATE, 2_000, 12_000),
    )
    for kind, rate, low, high in kinds:
        if rng.random() < rate:
            serial = "".join(rng.choice(_PLATE_CHARS) for _ in range(5))
            registered = rng.randint(_FIRST_REGISTRATION, _LAST_REGISTRATION)
            vehicles.append(
                Vehicle.model_construct(
                    plate=f"{_province(id_number)}{rng.choice('ABCDEFGH')}{serial}",
                    type=kind,
                    registered_on=date.fromordinal(registered),
                    value=_yuan(rng, low, high),
                )
            )
    return vehicles or None


def _pension(rng: random.Random) -> Pension | None:
    draw = rng.random()
    if draw < PENSION_RECEIVING_RATE:
        return Pension.model_construct(status="receiving", monthly_amount=_yuan(rng, 800, 3000))
    if draw < PENSION_RECEIVING_RATE + PENSION_CONTRIBUTING_RATE:
        # Contributors receive nothing yet; a non-zero amount would read as income.
        return Pension.model_construct(status="contributing", monthly_amount=Decimal("0.00"))
    return None


def _housing_fund(rng: random.Random, on_payroll: bool) -> HousingFund | None:
    others_rate = (HOUSING_FUND_RATE - PAYROLL_RATE) / (1 - PAYROLL_RATE)
    if not on_payroll and rng.random() >= others_rate:
        return None
    active = on_payroll or rng.random() < 0.8
    return HousingFund.model_construct(
        status="active" if active else "closed",
        balance=_yuan(rng, 1_000, 120_000),
        monthly_deposit=_yuan(rng, 200, 2_500) if active else Decimal("0.00"),
    )


def _property(rng: random.Random, id_number: str, usage: Usage) -> Property:
    return Property.model_construct(
        certificate=(
            f"{_province(id_number)}({rng.randint(2015, 2025)})不动产权第"
            f"{rng.randrange(10_000_000):07d}号"
        ),
        usage=usage,
        area_m2=_yuan(rng, 40, 140),
        region_code=id_number[:6],
    )


def _real_estate(rng: random.Random, id_number: str) -> list[Property] | None:
    if rng.random() >= PROPERTY_RATE:
        return None
    properties = [_property(rng, id_number, "residential")]
    if rng.random() < SECOND_PROPERTY_RATE:
        usage: Usage = "commercial" if rng.random() < 0.4 else "residential"
        properties.append(_property(rng, id_number, usage))
    return properties


def _payroll(rng: random.Random) -> Payroll | None:
    if rng.random() >= PAYROLL_RATE:
        return None
    return Payroll.model_construct(
        employer=rng.choice(_EMPLOYERS), monthly_salary=_yuan(rng, 3_000, 12_000)
    )


def _balance(rng: random.Random) -> Decimal:
    if rng.random() < LARGE_BALANCE_RATE:
        return _yuan(rng, 100_000, 2_000_000)
    # Cubing a uniform draw skews toward small savings: median about 6,000 yuan.
    return Decimal(int(rng.random() ** 3 * 5_000_000)).scaleb(-2)


def _bank_accounts(rng: random.Random) -> list[BankAccount] | None:
    if rng.random() < NO_BANK_ACCOUNT_RATE:
        return None
    count = 1 + (rng.random() < 0.35) + (rng.random() < 0.10)
    accounts = []
    for _ in range(count):
        bank, bin_prefix = rng.choice(_BANKS)
        digits = rng.choice((10, 13))  # 16- and 19-digit card numbers
        account = f"{bin_prefix}{rng.randrange(10**digits):0{digits}d}"
        accounts.append(
            BankAccount.model_construct(bank=bank, account=account, balance=_balance(rng))
        )
    return accounts


def _company(rng: random.Random, id_number: str) -> tuple[str, str, Decimal]:
    """A company name, its unified social credit code and registered capital (yuan)."""
    name = f"{_province(id_number)}{rng.randrange(1000):03d}{rng.choice(_COMPANY_KINDS)}"
    tail = "".join(rng.choice(_CREDIT_CODE_CHARS) for _ in range(10))
    code = f"91{id_number[:6]}{tail}"
    return name, code, Decimal(rng.choice((10, 30, 50, 100, 200, 500)) * 10_000).scaleb(0)


def _business(rng: random.Random, id_number: str) -> list[BusinessRole] | None:
    roles = []
    if rng.random() < LEGAL_REPRESENTATIVE_RATE:
        name, code, capital = _company(rng, id_number)
        roles.append(
            BusinessRole.model_construct(
                company=name,
                credit_code=code,
                role="legal_representative",
                registered_capital=capital.quantize(Decimal("0.01")),
                share_ratio=None,
            )
        )
    if rng.random() < SHAREHOLDER_RATE:
        name, code, capital = _company(rng, id_number)
        roles.append(
            BusinessRole.model_construct(
                company=name,
                credit_code=code,
                role="shareholder",
                registered_capital=capital.quantize(Decimal("0.01")),
                share_ratio=Decimal(rng.randint(5, 60)).scaleb(-2),
            )
        )
    return roles or None


def _tax(rng: random.Random) -> Tax | None:
    if rng.random() >= TAXED_INCOME_RATE:
        return None
    return Tax.model_construct(year=TAX_YEAR, annual_taxable_income=_yuan(rng, 6_000, 240_000))


def _social_insurance(rng: random.Random) -> SocialInsurance | None:
    if rng.random() >= SOCIAL_INSURANCE_RATE:
        return None
    return SocialInsurance.model_construct(
        employer=rng.choice(_EMPLOYERS),
        status="contributing" if rng.random() < 0.85 else "suspended",
        monthly_base=_yuan(rng, 2_000, 12_000),
    )


@lru_cache(maxsize=8192)
def synthetic_person(id_number: str) -> Person | None:
    """Records for an upper-cased ID number, or None when it is not a valid ID.

    Cached because one verification asks all six agencies about the same people within
    a few milliseconds; the cache is bounded, so millions of IDs cost no memory.
    """
    if id_number_problem(id_number) is not None:
        return None
    rng = random.Random(int.from_bytes(hashlib.sha256(id_number.encode()).digest(), "big"))
    payroll = _payroll(rng)
    return Person.model_construct(
        id_number=id_number,
        public_payroll=payroll,
        housing_fund=_housing_fund(rng, on_payroll=payroll is not None),
        pension=_pension(rng),
        vehicles=_vehicles(rng, id_number),
        real_estate=_real_estate(rng, id_number),
        bank_accounts=_bank_accounts(rng),
        # Drawn last, so every earlier agency's records stay what they always were.
        business=_business(rng, id_number),
        tax=_tax(rng),
        social_insurance=_social_insurance(rng),
    )
