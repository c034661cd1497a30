"""The `Upstash-Retry-Delay` expression language.

An expression such as `pow(2, retried) * 1000` yields the delay before the next
delivery attempt in **milliseconds**; `retried` is how many times the message has
already been retried (0 for the first retry).

Grammar (hand-written recursive descent; nothing is ever passed to `eval`)::

    expr    := term (("+" | "-") term)*
    term    := unary (("*" | "/" | "%") unary)*
    unary   := ("-" | "+") unary | primary
    primary := NUMBER | "retried" | NAME "(" expr ("," expr)* ")" | "(" expr ")"

Arithmetic follows IEEE-754 / Go `float64` semantics instead of raising: `x / 0`
is ±inf (NaN for `0 / 0`), `sqrt(-1)` is NaN, overflow is inf, `%` is
`math.fmod` (sign of the dividend, like Go and JavaScript) and `round` rounds
half away from zero (like Go's `math.Round`). Only the final result is sanitised,
see `MAX_DELAY_MS`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

__all__ = [
    "MAX_DELAY_MS",
    "MAX_EXPRESSION_LENGTH",
    "RetryDelay",
    "RetryDelayError",
    "compile_retry_delay",
]

# QStash caps every retry delay at one day.
MAX_DELAY_MS = 86_400_000.0
MAX_EXPRESSION_LENGTH = 1000
# Bounds recursion so pathological input like "((((...))))" fails cleanly instead of
# hitting Python's recursion limit (each level costs about four stack frames).
_MAX_NESTING = 64

_Evaluator = Callable[[float], float]

_TOKEN_RE = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<number>[0-9]+(?:\.[0-9]*)?|\.[0-9]+)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>\*\*|[-+*/%(),^])
    """,
    re.VERBOSE | re.ASCII,
)


class RetryDelayError(ValueError):
    """Raised when an `Upstash-Retry-Delay` expression cannot be compiled."""


@dataclass(frozen=True)
class _Token:
    kind: str  # "number", "name", "op" or "end"
    text: str
    pos: int


def _tokenize(source: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while pos < len(source):
        match = _TOKEN_RE.match(source, pos)
        if match is None:
            raise RetryDelayError(
                f"invalid retry delay {source!r}: unexpected character "
                f"{source[pos]!r} at position {pos}"
            )
        kind = match.lastgroup
        assert kind is not None
        text = match.group()
        if text in ("^", "**"):
            raise RetryDelayError(
                f"invalid retry delay {source!r}: operator {text!r} at position {pos} "
                "is not supported, use pow(x, y)"
            )
        if kind != "ws":
            tokens.append(_Token(kind, text, pos))
        pos = match.end()
    tokens.append(_Token("end", "", pos))
    return tokens


# --- IEEE-style arithmetic helpers: never raise, mirror Go float64 behaviour ---------


def _div(a: float, b: float) -> float:
    if b == 0.0:
        if a == 0.0 or math.isnan(a):
            return math.nan
        return math.copysign(math.inf, a) * math.copysign(1.0, b)
    return a / b


def _mod(a: float, b: float) -> float:
    if b == 0.0 or math.isinf(a) or math.isnan(a) or math.isnan(b):
        return math.nan
    return math.fmod(a, b)


def _pow(x: float, y: float) -> float:
    try:
        return math.pow(x, y)
    except OverflowError:
        odd_integer_exponent = y.is_integer() and int(y) % 2 == 1
        return -math.inf if x < 0 and odd_integer_exponent else math.inf
    except ValueError:
        # math.pow raises for 0**negative (Go: +Inf) and negative**fraction (Go: NaN).
        if x == 0.0 and y < 0:
            return math.inf
        return math.nan


def _exp(x: float) -> float:
    try:
        return math.exp(x)
    except OverflowError:
        return math.inf


def _sqrt(x: float) -> float:
    if math.isnan(x) or x < 0:
        return math.nan
    return math.sqrt(x)


def _floor(x: float) -> float:
    return float(math.floor(x)) if math.isfinite(x) else x


def _ceil(x: float) -> float:
    return float(math.ceil(x)) if math.isfinite(x) else x


def _round(x: float) -> float:
    # Half away from zero (Go's math.Round), not Python's banker's rounding.
    if not math.isfinite(x):
        return x
    truncated = float(math.trunc(x))
    if abs(x - truncated) >= 0.5:
        truncated += math.copysign(1.0, x)
    return truncated


def _min(x: float, y: float) -> float:
    if math.isnan(x) or math.isnan(y):
        return math.nan
    return min(x, y)


def _max(x: float, y: float) -> float:
    if math.isnan(x) or math.isnan(y):
        return math.nan
    return max(x, y)


_FUNCTIONS: dict[str, tuple[int, Callable[..., float]]] = {
    "pow": (2, _pow),
    "exp": (1, _exp),
    "sqrt": (1, _sqrt),
    "abs": (1, abs),
    "floor": (1, _floor),
    "ceil": (1, _ceil),
    "round": (1, _round),
    "min": (2, _min),
    "max": (2, _max),
}

_BINARY_OPS: dict[str, Callable[[float, float], float]] = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "/": _div,
    "%": _mod,
}


def _binary(op: Callable[[float, float], float], left: _Evaluator, right: _Evaluator) -> _Evaluator:
    return lambda r: op(left(r), right(r))


def _call(fn: Callable[..., float], args: Sequence[_Evaluator]) -> _Evaluator:
    if len(args) == 1:
        (only,) = args
        return lambda r: float(fn(only(r)))
    first, second = args
    return lambda r: float(fn(first(r), second(r)))


class _Parser:
    def __init__(self, source: str) -> None:
        self._source = source
        self._tokens = _tokenize(source)
        self._index = 0
        self._depth = 0

    def _error(self, message: str, token: _Token | None = None) -> RetryDelayError:
        where = token if token is not None else self._peek()
        at = "end of input" if where.kind == "end" else f"position {where.pos}"
        return RetryDelayError(f"invalid retry delay {self._source!r}: {message} at {at}")

    def _peek(self) -> _Token:
        return self._tokens[self._index]

    def _advance(self) -> _Token:
        token = self._tokens[self._index]
        if token.kind != "end":
            self._index += 1
        return token

    def _expect_op(self, text: str) -> None:
        token = self._peek()
        if token.kind != "op" or token.text != text:
            found = "end of input" if token.kind == "end" else repr(token.text)
            raise self._error(f"expected {text!r} but found {found}", token)
        self._advance()

    def parse(self) -> _Evaluator:
        result = self._expr()
        token = self._peek()
        if token.kind != "end":
            raise self._error(f"unexpected {token.text!r}", token)
        return result

    def _expr(self) -> _Evaluator:
        left = self._term()
        while (token := self._peek()).kind == "op" and token.text in ("+", "-"):
            self._advance()
            left = _binary(_BINARY_OPS[token.text], left, self._term())
        return left

    def _term(self) -> _Evaluator:
        left = self._unary()
        while (token := self._peek()).kind == "op" and token.text in ("*", "/", "%"):
            self._advance()
            left = _binary(_BINARY_OPS[token.text], left, self._unary())
        return left

    def _unary(self) -> _Evaluator:
        self._depth += 1
        if self._depth > _MAX_NESTING:
            raise self._error("expression nested too deeply")
        try:
            token = self._peek()
            if token.kind == "op" and token.text in ("-", "+"):
                self._advance()
                operand = self._unary()
                if token.text == "-":
                    return lambda r: -operand(r)
                return operand
            return self._primary()
        finally:
            self._depth -= 1

    def _primary(self) -> _Evaluator:
        token = self._advance()
        if token.kind == "number":
            value = float(token.text)  # absurdly long literals become inf, never raise
            return lambda r: value
        if token.kind == "name":
            return self._name(token)
        if token.kind == "op" and token.text == "(":
            inner = self._expr()
            self._expect_op(")")
            return inner
        found = "end of input" if token.kind == "end" else repr(token.text)
        raise self._error(
            f"expected a number, 'retried', a function call or '(' but found {found}", token
        )

    def _name(self, token: _Token) -> _Evaluator:
        name = token.text
        is_call = self._peek().kind == "op" and self._peek().text == "("
        if name == "retried":
            if is_call:
                raise self._error("'retried' is a variable, not a function", token)
            return lambda r: r
        if name not in _FUNCTIONS:
            known = ", ".join(sorted(_FUNCTIONS))
            kind = "function" if is_call else "identifier"
            raise self._error(
                f"unknown {kind} {name!r} (the only variable is 'retried'; functions: {known})",
                token,
            )
        arity, fn = _FUNCTIONS[name]
        if not is_call:
            raise self._error(f"function {name!r} must be called with '('", token)
        self._advance()  # "("
        args: list[_Evaluator] = []
        if not (self._peek().kind == "op" and self._peek().text == ")"):
            args.append(self._expr())
            while self._peek().kind == "op" and self._peek().text == ",":
                self._advance()
                args.append(self._expr())
        self._expect_op(")")
        if len(args) != arity:
            plural = "argument" if arity == 1 else "arguments"
            raise self._error(
                f"function {name!r} takes {arity} {plural} but {len(args)} were given", token
            )
        return _call(fn, args)


def _sanitize(value: float) -> float:
    # NaN means the expression is meaningless for this attempt: retry without extra delay
    # rather than parking the message for a day. +inf hits the one-day cap; anything
    # negative (including -inf) means "no delay".
    if math.isnan(value) or value <= 0.0:
        return 0.0
    return min(value, MAX_DELAY_MS)


@dataclass(frozen=True)
class RetryDelay:
    """A compiled `Upstash-Retry-Delay` expression."""

    source: str
    _evaluator: _Evaluator = field(repr=False, compare=False)

    def evaluate(self, retried: int) -> float:
        """Delay in milliseconds before the next attempt, clamped to `[0, MAX_DELAY_MS]`.

        Never raises: math errors produce NaN/inf internally and are sanitised.
        """
        try:
            value = self._evaluator(float(retried))
        except (ArithmeticError, ValueError):  # pragma: no cover - helpers don't raise
            return 0.0
        return _sanitize(value)


def compile_retry_delay(expr: str) -> RetryDelay:
    """Parse an `Upstash-Retry-Delay` expression once for repeated evaluation.

    Raises `RetryDelayError` on empty or over-long (>1000 chars) input, syntax
    errors, unknown identifiers or functions and wrong argument counts.
    """
    if len(expr) > MAX_EXPRESSION_LENGTH:
        raise RetryDelayError(
            f"invalid retry delay: expression is {len(expr)} characters long, "
            f"the maximum is {MAX_EXPRESSION_LENGTH}"
        )
    if not expr.strip():
        raise RetryDelayError("invalid retry delay: expression is empty")
    return RetryDelay(expr, _Parser(expr).parse())
