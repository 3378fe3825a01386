"""Reference data shipped in qsampling.data: regions (GB/T 2260), categories, check items."""

from __future__ import annotations

import csv
import io
import json
import re
from collections import Counter
from decimal import Decimal
from functools import cache
from importlib import resources
from typing import Any

import pytest

DATA_FILES = ["regions.csv", "categories.csv", "check_items.json"]


def _bytes(name: str) -> bytes:
    return resources.files("qsampling.data").joinpath(name).read_bytes()


@cache
def _csv(name: str) -> tuple[list[str], list[dict[str, str]]]:
    reader = csv.DictReader(io.StringIO(_bytes(name).decode("utf-8"), newline=""))
    rows = list(reader)
    assert reader.fieldnames is not None
    return list(reader.fieldnames), rows


def regions() -> dict[str, dict[str, str]]:
    return {row["code"]: row for row in _csv("regions.csv")[1]}


def categories() -> dict[str, dict[str, str]]:
    return {row["code"]: row for row in _csv("categories.csv")[1]}


def check_items() -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = json.loads(_bytes("check_items.json").decode("utf-8"))
    return items


# -- all files ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", DATA_FILES)
def test_utf8_without_bom_with_lf(name: str) -> None:
    data = _bytes(name)
    assert not data.startswith(b"\xef\xbb\xbf")
    data.decode("utf-8")
    assert b"\r" not in data
    assert data.endswith(b"\n")


@pytest.mark.parametrize(
    ("name", "header"),
    [
        ("regions.csv", ["code", "name", "level", "parent_code"]),
        ("categories.csv", ["code", "name", "parent_code", "level"]),
    ],
)
def test_csv_headers_and_codes_unique(name: str, header: list[str]) -> None:
    fieldnames, rows = _csv(name)
    assert fieldnames == header
    codes = [row["code"] for row in rows]
    assert len(codes) == len(set(codes))
    assert all(row["name"].strip() == row["name"] and row["name"] for row in rows)
    assert all(None not in row for row in rows)  # no extra columns


# -- regions (GB/T 2260) ------------------------------------------------------------------


def test_region_codes_and_levels() -> None:
    for code, row in regions().items():
        assert re.fullmatch(r"\d{6}", code), code
        level, parent = row["level"], row["parent_code"]
        if level == "province":
            assert code.endswith("0000")
            assert parent == ""
        elif level == "city":
            assert code.endswith("00")
            assert not code.endswith("0000")
            assert parent == code[:2] + "0000"
        else:
            assert level == "county", code
            assert not code.endswith("00")
            assert parent == code[:4] + "00"


def test_every_region_parent_exists_with_prefix() -> None:
    table = regions()
    expected_parent_level = {"city": "province", "county": "city"}
    prefix = {"city": 2, "county": 4}
    for code, row in table.items():
        if row["level"] == "province":
            continue
        parent = table[row["parent_code"]]
        assert parent["level"] == expected_parent_level[row["level"]]
        width = prefix[row["level"]]
        assert code[:width] == parent["code"][:width]


def test_all_34_provincial_divisions() -> None:
    provinces = {code: row["name"] for code, row in regions().items() if row["level"] == "province"}
    assert len(provinces) == 34
    assert set(provinces) == {
        f"{p}0000"
        for p in (
            "11 12 13 14 15 21 22 23 31 32 33 34 35 36 37 41 42 43 44 45 46 50 51 52 53 54 "
            "61 62 63 64 65 71 81 82"
        ).split()
    }
    assert provinces["710000"] == "台湾省"
    assert provinces["810000"] == "香港特别行政区"
    assert provinces["820000"] == "澳门特别行政区"
    assert provinces["350000"] == "福建省"
    assert provinces["370000"] == "山东省"


def _count(province: str, level: str) -> int:
    return sum(
        1 for code, row in regions().items() if code[:2] == province and row["level"] == level
    )


def test_fujian_and_shandong_counts() -> None:
    assert _count("35", "city") == 9
    assert _count("37", "city") == 16
    assert 80 <= _count("35", "county") <= 90
    assert 130 <= _count("37", "county") <= 140
    # Only Fujian and Shandong are detailed.
    assert {code[:2] for code, row in regions().items() if row["level"] != "province"} == {
        "35",
        "37",
    }


def test_every_city_has_counties() -> None:
    table = regions()
    parents = Counter(row["parent_code"] for row in table.values() if row["level"] == "county")
    cities = [code for code, row in table.items() if row["level"] == "city"]
    assert all(parents[city] > 0 for city in cities)


@pytest.mark.parametrize(
    ("code", "name", "parent"),
    [
        ("350100", "福州市", "350000"),
        ("350102", "鼓楼区", "350100"),
        ("350112", "长乐区", "350100"),  # 长乐市 became a district in 2017
        ("350404", "三元区", "350400"),  # 梅列区 merged into 三元区 in 2021
        ("350405", "沙县区", "350400"),
        ("350604", "龙海区", "350600"),
        ("350605", "长泰区", "350600"),
        ("370116", "莱芜区", "370100"),  # 莱芜市 merged into 济南市 in 2019
        ("370117", "钢城区", "370100"),
        ("370200", "青岛市", "370000"),
        ("370614", "蓬莱区", "370600"),
        ("371503", "茌平区", "371500"),
        ("371681", "邹平市", "371600"),
    ],
)
def test_known_regions(code: str, name: str, parent: str) -> None:
    row = regions()[code]
    assert row["name"] == name
    assert row["parent_code"] == parent


@pytest.mark.parametrize(
    "abolished", ["350182", "350402", "350403", "350427", "350625", "350681", "371200", "370634"]
)
def test_abolished_regions_are_absent(abolished: str) -> None:
    assert abolished not in regions()


# -- product categories -------------------------------------------------------------------


def test_category_codes_are_hierarchical() -> None:
    table = categories()
    for code, row in table.items():
        assert re.fullmatch(r"\d{2}(\.\d{2}){0,2}", code), code
        segments = code.split(".")
        assert row["level"] == str(len(segments))
        if len(segments) == 1:
            assert row["parent_code"] == ""
        else:
            assert row["parent_code"] == ".".join(segments[:-1])
            assert row["parent_code"] in table
            assert code.startswith(row["parent_code"] + ".")


def test_category_tree_shape() -> None:
    table = categories()
    levels = Counter(row["level"] for row in table.values())
    assert 8 <= levels["1"] <= 15
    assert 40 <= levels["2"] <= 70
    assert 120 <= levels["3"] <= 200
    children = Counter(row["parent_code"] for row in table.values())
    # Every non-leaf level has children: products sit at level 3.
    assert all(children[code] > 0 for code, row in table.items() if row["level"] != "3")
    names = {row["name"] for row in table.values() if row["level"] == "1"}
    assert {"儿童用品", "电子电器", "食品相关产品", "消防产品"} <= names


def test_category_examples() -> None:
    by_name = {row["name"]: code for code, row in categories().items()}
    assert by_name["婴儿推车"].startswith(by_name["童车"] + ".")
    assert by_name["童车"].startswith(by_name["儿童用品"] + ".")
    assert by_name["塑胶玩具"].startswith(by_name["玩具"] + ".")
    assert by_name["电热水壶"].startswith(by_name["家用电器"] + ".")


# -- check items --------------------------------------------------------------------------

PRACTICE = {  # DESIGN §3 local practice ranges, plus the DESIGN defaults
    "A": (Decimal("0"), Decimal("0.05")),
    "B": (Decimal("0.05"), Decimal("0.20")),
    "C": (Decimal("0.21"), Decimal("0.60")),
    "D": (Decimal("0.61"), Decimal("1")),
}
DEFAULTS = {"A": Decimal("0.03"), "B": Decimal("0.05"), "C": Decimal("0.20"), "D": Decimal("0.60")}


def test_check_items_shape() -> None:
    items = check_items()
    assert 10 <= len(items) <= 20
    assert len({item["code"] for item in items}) == len(items)
    keys = {
        "code",
        "name",
        "legal_basis",
        "kind",
        "category_codes",
        "ratios",
        "exclusion_days",
        "qualification",
        "team_size",
    }
    for item in items:
        assert set(item) == keys
        assert re.fullmatch(r"SC-\d{4}-\d{3}", item["code"])
        assert item["kind"] in {"重点", "一般"}
        assert "《" in item["legal_basis"]
        assert item["exclusion_days"] == 180
        assert re.fullmatch(r"QUAL-[A-Z]+", item["qualification"])
        assert item["team_size"] in {2, 3}  # at least two inspectors (行政处罚法 art. 42)


def test_check_items_reference_existing_categories() -> None:
    table = categories()
    for item in check_items():
        assert isinstance(item["category_codes"], list)
        for code in item["category_codes"]:
            assert code in table, (item["code"], code)


def test_check_item_ratios() -> None:
    for item in check_items():
        ratios = item["ratios"]
        assert set(ratios) == {"A", "B", "C", "D"}
        assert all(isinstance(value, str) for value in ratios.values())
        values = {cls: Decimal(value) for cls, value in ratios.items()}
        assert values["A"] <= values["B"] <= values["C"] <= values["D"]
        for cls, value in values.items():
            low, high = PRACTICE[cls]
            assert value == DEFAULTS[cls] or low <= value <= high, (item["code"], cls, value)


def test_registration_checks_present() -> None:
    registration = [item for item in check_items() if item["qualification"] == "QUAL-REG"]
    assert any(item["name"] == "企业公示信息抽查" for item in registration)
    assert all(item["category_codes"] == [] for item in registration)
