from __future__ import annotations

import math

import pytest
from qstash_emulator.parsing.retry_expressions import (
    MAX_DELAY_MS,
    RetryDelay,
    RetryDelayError,
    compile_retry_delay,
)


def _eval(expr: str, retried: int = 0) -> float:
    return compile_retry_delay(expr).evaluate(retried)


# --- documented examples --------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("1000", [1000, 1000, 1000, 1000]),
        ("1000 * (1 + retried)", [1000, 2000, 3000, 4000]),
        ("pow(2, retried) * 1000", [1000, 2000, 4000, 8000]),
        ("max(1000, pow(2, retried) * 100)", [1000, 1000, 1000, 1000, 1600, 3200]),
    ],
)
def test_documented_examples(expr: str, expected: list[float]) -> None:
    delay = compile_retry_delay(expr)
    assert [delay.evaluate(retried) for retried in range(len(expected))] == expected


def test_compiled_delay_keeps_source_and_is_reusable() -> None:
    source = " pow(2, retried) * 1000 "
    delay = compile_retry_delay(source)
    assert isinstance(delay, RetryDelay)
    assert delay.source == source
    assert delay.evaluate(3) == 8000
    assert delay.evaluate(0) == 1000
    assert delay.evaluate(3) == 8000


def test_evaluate_returns_float() -> None:
    assert isinstance(_eval("1000"), float)


def test_equality_is_by_source() -> None:
    assert compile_retry_delay("1 + 1") == compile_retry_delay("1 + 1")
    assert compile_retry_delay("1 + 1") != compile_retry_delay("1+1")


# --- operators, precedence, literals --------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("0", 0),
        ("42", 42),
        ("1.5", 1.5),
        (".5", 0.5),
        ("2.", 2),
        ("007", 7),
        ("1 + 2", 3),
        ("10 - 4", 6),
        ("6 * 7", 42),
        ("7 / 2", 3.5),
        ("7 % 4", 3),
        ("7.5 % 2", 1.5),
        ("1 + 2 * 3", 7),
        ("(1 + 2) * 3", 9),
        ("10 - 4 - 3", 3),  # left associative
        ("100 / 10 / 5", 2),
        ("2 * 3 % 4", 2),  # same precedence, left to right
        ("20 - 2 * 3 + 1", 15),
        ("-5 + 10", 5),
        ("--5", 5),
        ("+5", 5),
        ("-(2 - 7)", 5),
        ("10 * -2 + 30", 10),
        ("3 - -2", 5),
        ("((((1))))", 1),
        ("  1000\t*\n2 ", 2000),
        ("1000*(1+retried)", 1000),
    ],
)
def test_arithmetic(expr: str, expected: float) -> None:
    assert _eval(expr) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("expr", "retried", "expected"),
    [
        ("retried", 0, 0),
        ("retried", 5, 5),
        ("retried * retried * 1000", 3, 9000),
        ("1000 * retried + 500", 2, 2500),
        ("-retried + 10", 4, 6),
        ("1000 / (retried + 1)", 3, 250),
        ("retried % 2 * 1000", 3, 1000),
    ],
)
def test_retried_variable(expr: str, retried: int, expected: float) -> None:
    assert _eval(expr, retried) == pytest.approx(expected)


# --- functions -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("pow(2, 10)", 1024),
        ("pow(10, 0)", 1),
        ("pow(4, 0.5)", 2),
        ("pow(2, -1) * 1000", 500),
        ("exp(0)", 1),
        ("exp(1) * 1000", math.e * 1000),
        ("exp(2.5 * 2) * 1000", math.exp(5) * 1000),
        ("sqrt(16)", 4),
        ("sqrt(2) * 1000", math.sqrt(2) * 1000),
        ("abs(-250)", 250),
        ("abs(250)", 250),
        ("floor(2.7)", 2),
        ("floor(-2.5) + 10", 7),
        ("ceil(2.1)", 3),
        ("ceil(-2.5) + 10", 8),
        ("round(2.4)", 2),
        ("round(2.5)", 3),  # half away from zero, not banker's rounding
        ("round(3.5)", 4),
        ("round(0.5)", 1),
        ("round(-2.5) + 10", 7),
        ("min(3, 7)", 3),
        ("min(7, 3)", 3),
        ("max(3, 7)", 7),
        ("max(7, 3)", 7),
        ("max(min(5000, 100 * 3), 200)", 300),
        ("pow(2, pow(2, 2))", 16),
        ("floor(sqrt(pow(3, 2) + pow(4, 2))) * 100", 500),
        ("min( 1 , 2 )", 1),
    ],
)
def test_functions(expr: str, expected: float) -> None:
    assert _eval(expr) == pytest.approx(expected)


def test_default_backoff_formula_is_expressible() -> None:
    delay = compile_retry_delay("min(86400, exp(2.5 * retried)) * 1000")
    assert delay.evaluate(1) == pytest.approx(math.exp(2.5) * 1000)  # ~12s
    assert delay.evaluate(5) == MAX_DELAY_MS


# --- clamping and math errors -----------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("-1000", 0.0),  # negative: no delay
        ("0 - retried * 1000", 0.0),
        ("1 / 0", MAX_DELAY_MS),  # +inf: capped
        ("-1 / 0", 0.0),  # -inf
        ("0 / 0", 0.0),  # NaN
        ("1000 % 0", 0.0),  # NaN, like Go's math.Mod
        ("sqrt(-1)", 0.0),  # NaN
        ("sqrt(-1) + 1000", 0.0),  # NaN propagates
        ("exp(1000)", MAX_DELAY_MS),  # overflow
        ("exp(1000) - exp(1000)", 0.0),  # inf - inf is NaN
        ("pow(10, 400)", MAX_DELAY_MS),
        ("pow(-10, 401)", 0.0),  # -inf
        ("pow(0, -1)", MAX_DELAY_MS),  # Go: +Inf
        ("pow(-8, 0.5)", 0.0),  # NaN
        ("pow(10, 308) * 10", MAX_DELAY_MS),
        ("floor(1 / 0)", MAX_DELAY_MS),
        ("ceil(0 / 0)", 0.0),
        ("round(1 / 0)", MAX_DELAY_MS),
        ("max(1000, 0 / 0)", 0.0),
        ("min(0 / 0, 1000)", 0.0),
        ("abs(-1 / 0)", MAX_DELAY_MS),
        ("86400001", MAX_DELAY_MS),
        ("86400000", MAX_DELAY_MS),
        ("9" * 400, MAX_DELAY_MS),  # literal too large for a float becomes inf
        ("-7 % 3 + 1000", 999),  # fmod keeps the dividend's sign (Go/JS), Python gives 1001
    ],
)
def test_math_errors_are_clamped(expr: str, expected: float) -> None:
    result = _eval(expr)
    assert result == expected
    assert math.isfinite(result)


@pytest.mark.parametrize("retried", [0, 1, 5, 10, 100, 1_000, 10**6, 10**400, -1])
@pytest.mark.parametrize(
    "expr",
    [
        "pow(2, retried) * 1000",
        "exp(retried)",
        "1000 / retried",
        "1000 % retried",
        "sqrt(retried - 50)",
        "retried * retried * retried",
        "pow(retried, retried)",
        "round(exp(retried)) - exp(retried)",
    ],
)
def test_evaluate_never_raises_and_stays_in_range(expr: str, retried: int) -> None:
    result = compile_retry_delay(expr).evaluate(retried)
    assert 0.0 <= result <= MAX_DELAY_MS


def test_large_retried_hits_the_cap() -> None:
    delay = compile_retry_delay("pow(2, retried) * 1000")
    assert delay.evaluate(16) == 65_536_000
    assert delay.evaluate(17) == MAX_DELAY_MS
    assert delay.evaluate(10_000) == MAX_DELAY_MS


# --- compile errors ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("1 +", "expected a number, .* but found end of input"),
        ("* 2", "expected a number, 'retried', a function call or '\\(' but found '\\*'"),
        ("(1 + 2", "expected '\\)'"),
        ("1 + 2)", "unexpected '\\)'"),
        ("()", "but found '\\)'"),
        ("1 2", "unexpected '2'"),
        ("retried retried", "unexpected 'retried'"),
        ("2 ** 3", "not supported, use pow"),
        ("2 ^ 3", "not supported, use pow"),
        ("pow(2, 3) ** 2", "'\\*\\*' at position 10 is not supported"),
        ("1e3", "unexpected 'e3'"),
        ("1..2", "unexpected '.2'"),
        ("1000ms", "unexpected 'ms'"),
        ("x", "unknown identifier 'x'"),
        ("retries", "unknown identifier 'retries'"),
        ("Retried", "unknown identifier 'Retried'"),
        ("e", "unknown identifier 'e'"),
        ("pi * 2", "unknown identifier 'pi'"),
        ("__import__(1)", "unknown function '__import__'"),
        ("__import__('os')", "unexpected character"),
        ("log(10)", "unknown function 'log'"),
        ("POW(2, 3)", "unknown function 'POW'"),
        ("retried(1)", "variable, not a function"),
        ("pow", "must be called"),
        ("pow + 1", "must be called"),
        ("pow(2)", "takes 2 arguments but 1 were given"),
        ("pow(2, 3, 4)", "takes 2 arguments but 3 were given"),
        ("min(1)", "takes 2 arguments"),
        ("max(1, 2, 3)", "takes 2 arguments"),
        ("sqrt()", "takes 1 argument but 0 were given"),
        ("abs(1, 2)", "takes 1 argument but 2 were given"),
        ("pow(2,)", "expected a number, .* but found '\\)'"),
        ("pow(,2)", "but found ','"),
        ("pow(2 3)", "expected '\\)' but found '3'"),
        ("1 + 'a'", "unexpected character"),
        ("1 == 1", "unexpected character"),
        ("1 < 2", "unexpected character"),
        ("retried.real", "unexpected"),
        ("[1]", "unexpected character"),
        ("1; 2", "unexpected character"),
        ("1 + \u0663", "unexpected character"),  # non-ASCII digit
        ("1000\u00a0+ 1", "unexpected character"),  # non-ASCII space
        ("lambda", "unknown identifier 'lambda'"),
    ],
)
def test_compile_errors(expr: str, message: str) -> None:
    with pytest.raises(RetryDelayError, match=message):
        compile_retry_delay(expr)


def test_error_message_names_source_and_position() -> None:
    with pytest.raises(RetryDelayError) as info:
        compile_retry_delay("pow(2, retried) * foo")
    text = str(info.value)
    assert "'pow(2, retried) * foo'" in text
    assert "position 18" in text


def test_error_at_end_of_input_says_so() -> None:
    with pytest.raises(RetryDelayError, match="end of input"):
        compile_retry_delay("1000 * (")


def test_length_limit() -> None:
    ok = "1" + " + 1" * 249  # 997 characters
    assert len(ok) <= 1000
    assert compile_retry_delay(ok).evaluate(0) == 250
    too_long = "1" + " " * 1000
    with pytest.raises(RetryDelayError, match="maximum is 1000"):
        compile_retry_delay(too_long)


@pytest.mark.parametrize("depth", [200, 499])
def test_deep_nesting_is_rejected_cleanly(depth: int) -> None:
    with pytest.raises(RetryDelayError, match="nested too deeply"):
        compile_retry_delay("(" * depth + "1" + ")" * depth)
    with pytest.raises(RetryDelayError, match="nested too deeply"):
        compile_retry_delay("-" * depth + "1")


def test_moderate_nesting_is_fine() -> None:
    assert compile_retry_delay("(" * 30 + "1000" + ")" * 30).evaluate(0) == 1000
    assert compile_retry_delay("abs(" * 30 + "-1000" + ")" * 30).evaluate(0) == 1000


def test_retry_delay_error_is_value_error() -> None:
    assert issubclass(RetryDelayError, ValueError)
