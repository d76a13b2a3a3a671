"""runs.formatting: the one duration and number format of the pages, the admin and the CLI."""

from datetime import timedelta

import pytest

from runs import formatting


@pytest.mark.parametrize("value, text", [
    (0, "0 s"), (12.3, "12 s"), (0.5, "1 s"), (2.5, "3 s"), (59.4, "59 s"), (59.5, "1 min 00 s"),
    (75, "1 min 15 s"), (3599.4, "59 min 59 s"), (3600, "1 h 00 min"), (3720, "1 h 02 min"),
    (timedelta(minutes=2, seconds=3), "2 min 03 s"), ("42", "42 s"), (-3, "0 s"),
    (None, "—"), ("", "—"), ("soon", "—"), (float("nan"), "—"),
])
def test_it_formats_durations(value, text):
    assert formatting.duration(value) == text


@pytest.mark.parametrize("seconds, text", [
    (0.5, "1 s"), (2.5, "3 s"), (4.5, "5 s"), (2.49, "2 s"), (59.5, "1 min 00 s"), (60.5, "1 min 01 s"),
])
def test_it_rounds_half_up_like_the_browser(seconds, text):
    # Python's round(2.5) is 2 (half to even); JavaScript's Math.round(2.5) is 3. The ticking clock uses the latter,
    # so the server's text must too: the even halves (0.5, 2.5, 4.5) are where round() would differ.
    assert formatting.duration(seconds) == text


@pytest.mark.parametrize("value, text", [
    (3, "3"), (0, "0"), (0.9733333333333333, "0.9733"), (1.0, "1.0000"), (0.0, "0.0000"),
    (3.2e-05, "3.20e-05"), (-0.0004, "-4.00e-04"), (0.001, "0.0010"), (12345.678, "12345.6780"),
    (float("nan"), "—"), (float("inf"), "∞"), (None, "—"), (True, "—"), ("n/a", "n/a"),
])
def test_it_formats_numbers(value, text):
    assert formatting.number(value) == text


@pytest.mark.parametrize("value, text", [
    (0.125, "0.13"), (0.0312, "0.03"), (1.5, "1.50"), (3, "3.00"), (2.675, "2.68"), (-0.004, "0.00"),
    (123456.785, "123456.79"), (None, ""), ("", ""), ("soon", ""), (float("nan"), ""), (float("inf"), ""),
])
def test_it_formats_fixed_decimals_as_floatformat_rounds(value, text):
    from django.template.defaultfilters import floatformat

    assert formatting.fixed(value) == text
    if text:  # the results page used floatformat:2 for fit times; the live row must read the same
        assert floatformat(value, 2) == text


def test_it_formats_mean_and_std():
    assert formatting.mean_std({"mean": 0.9666666, "std": 0.0235702}) == "0.9667 ± 0.0236"
    assert formatting.mean_std({"mean": 0.97, "std": None}) == "0.9700"
    assert formatting.mean_std({"mean": None, "std": None}) == "—"
    assert formatting.mean_std(None) == "—"
    # One fold (an unfinished variant) has no spread: not "± 0.0000".
    assert formatting.mean_std({"mean": 0.9, "std": 0.0, "count": 1}) == "0.9000 ± —"
    assert formatting.mean_std({"mean": 0.9, "std": 0.0, "count": 2}) == "0.9000 ± 0.0000"


@pytest.mark.parametrize("finished, total, progress, expected", [
    (41, 50, None, 82.0),
    (7, 3, None, 100.0),  # a refit counted past the plan never shows more than 100
    (0, 0, 0.25, 25.0),  # no fit count (an evaluation): the runner's own fraction
    (0, 0, None, 0.0),
    (0, None, "bad", 0.0),
    (0, 0, 3.0, 100.0),
])
def test_it_gives_one_percent_for_the_row_the_page_and_the_cli(finished, total, progress, expected):
    assert formatting.percent(finished, total, progress) == expected
