"""Budgets: limit rows, headroom arithmetic, and the error that names what is over."""

from __future__ import annotations

import json

import pytest
from conftest import run_cli

from mncompile.budget import check_budget, enforce
from mncompile.errors import EXIT_CODES, BudgetError
from mncompile.targets import get_target

KB, MB = 1024, 1024 * 1024


def rows(report):
    return {row.name: (row.used, row.limit, row.headroom) for row in report.rows}


def test_rows_and_headroom_against_the_target():
    m7 = get_target("cortex-m7")  # 2 MB flash, 512 KB RAM
    report = check_budget(1_000_000, 300_000, 28_648, m7)
    assert rows(report) == {"flash": (1_000_000, 2 * MB, 2 * MB - 1_000_000),
                            "ram": (328_648, 512 * KB, 512 * KB - 328_648)}
    assert report.fits and report.exceeded == ()
    assert report.total_bytes == 1_328_648
    assert report.headroom == 512 * KB - 328_648  # the binding limit


def test_budget_row_counts_constants_arena_and_io():
    report = check_budget(5 * MB, 900 * KB, 200 * KB, get_target("cortex-m55"), budget="6MB")
    used = 5 * MB + 1100 * KB
    assert rows(report)["budget"] == (used, 6 * MB, 6 * MB - used)
    assert report.rows[0].source == "--budget"
    assert {r.name for r in report.exceeded} == {"budget", "flash"}  # 5 MB > 2 MB flash too
    assert not report.fits


def test_overrides_replace_the_targets_limits():
    m4 = get_target("cortex-m4")
    report = check_budget(600_000, 100_000, 30_000, m4, ram="1MB", flash=393216)
    assert rows(report)["ram"] == (130_000, MB, MB - 130_000)
    assert rows(report)["flash"] == (600_000, 393_216, -206_784)  # negative: over
    assert {r.name: r.source for r in report.rows} == {"flash": "--flash", "ram": "--ram"}


def test_shared_memory_target_checks_the_sum():
    u65 = get_target("ethos-u65-256")  # constants and arena share 32 MB of DRAM
    report = check_budget(20 * MB, 10 * MB, 3 * MB, u65)
    assert rows(report)["shared"] == (33 * MB, 32 * MB, -MB)
    assert rows(report)["flash"][2] > 0 and rows(report)["ram"][2] > 0
    assert [r.name for r in report.exceeded] == ["shared"]
    assert "shared" not in rows(check_budget(20 * MB, 10 * MB, 3 * MB, u65, ram="64MB"))


def test_enforce_names_every_exceeded_limit_by_how_much_and_the_suggestion():
    report = check_budget(3 * MB, 600 * KB, 28 * KB, get_target("cortex-m7"), budget="3MB")
    with pytest.raises(BudgetError) as info:
        enforce(report, "--alpha 0.5 at 224 or --resolution 128 at alpha 1.0 fits")
    err = info.value
    assert err.exit_code == 8 and err.kind == "budget"
    over_budget = 3 * MB + 628 * KB - 3 * MB
    assert f"over by {over_budget:,} B" in err.message
    assert f"over by {3 * MB - 2 * MB:,} B" in err.message  # flash
    assert f"over by {628 * KB - 512 * KB:,} B" in err.message  # RAM
    assert err.message.endswith("--alpha 0.5 at 224 or --resolution 128 at alpha 1.0 fits")
    for option in ("--ram", "--flash", "--budget"):
        assert option in err.hint
    enforce(check_budget(1, 1, 1, get_target("cortex-m7")))  # fits: no error


def test_report_json_round_trips():
    report = check_budget(10, 20, 30, get_target("cortex-m4"), budget=100)
    doc = json.loads(json.dumps(report.to_json()))
    assert doc["total_bytes"] == 60 and doc["fits"] is True
    assert [r["name"] for r in doc["limits"]] == ["budget", "flash", "ram"]
    assert doc["limits"][0]["headroom_bytes"] == 40


def test_bad_size_is_an_option_error():
    from mncompile.errors import InvalidOptionError

    with pytest.raises(InvalidOptionError):
        check_budget(1, 1, 1, get_target("cortex-m4"), budget="6 XB")


def test_exit_code_8_is_in_the_table():
    assert (8, dict(EXIT_CODES)[8]) in EXIT_CODES and "budget" in dict(EXIT_CODES)[8]


def test_cli_nothing_fits_exits_8_with_one_json_document():
    proc = run_cli("fit", "--target", "cortex-m4", "--budget", "100KB", "--json")
    assert proc.returncode == 8, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["error"] == "budget" and doc["exit_code"] == 8
    assert "alpha 0.25 at 96 px" in doc["message"] and "over by" in doc["message"]
    assert "--ram" in doc["hint"]
    assert "error:" in proc.stderr


def test_cli_bad_budget_is_exit_2():
    proc = run_cli("fit", "--budget", "6 parsecs")
    assert proc.returncode == 2
