"""Tokens of the constraint language.

The lexer knows every token the grammar uses, plus the Python spellings people
reach for by habit (``=``, ``&&``, ``**``, ``{``, ``:``...), so the parser can
say what to write instead. Anything else is rejected at its column.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from fractions import Fraction
from typing import Final

from ._ast import LiteralValue
from ._errors import ConstraintSyntaxError

MAX_EXPRESSION_CHARS: Final = 4_000
_MAX_NUMBER_CHARS: Final = 80
_MAX_EXPONENT: Final = 64


class TokenKind(Enum):
    NUMBER = "number"
    STRING = "string"
    NAME = "name"
    OP = "operator"
    END = "end of expression"


@dataclass(frozen=True, slots=True)
class Token:
    kind: TokenKind
    text: str
    column: int  # 1-based
    value: LiteralValue | None = None


# Longest first: "**" before "*", "<=" before "<", "//" before "/".
_OPERATORS: Final = (
    "**", "//", "==", "!=", "<=", ">=", "&&", "||", "->", "=>",
    "+", "-", "*", "/", "%", "<", ">", "(", ")", "[", "]", ",", ".",
    "=", "!", "&", "|", "{", "}", ":", ";", "^", "~", "@",
)  # fmt: skip

_NUMBER: Final = re.compile(r"\d(?:_?\d)*(?:\.\d(?:_?\d)*)?(?:[eE][+-]?\d+)?", re.ASCII)
_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SIMPLE_ESCAPES: Final = {"\\": "\\", '"': '"', "'": "'", "n": "\n", "r": "\r", "t": "\t"}


def _fail(text: str, column: int, problem: str) -> ConstraintSyntaxError:
    return ConstraintSyntaxError(problem, expression=text, column=column)


def _number(text: str, start: int) -> tuple[Token, int]:
    match = _NUMBER.match(text, start)
    if match is None:  # pragma: no cover - only called on a digit
        raise _fail(text, start + 1, "expected a number")
    end = match.end()
    spelled = match.group()
    if end < len(text) and (text[end].isalnum() or text[end] in "._"):
        raise _fail(
            text,
            start + 1,
            f"malformed number {text[start : end + 1]!r}: a number is digits with an optional "
            "'.fraction' and 'e' exponent, followed by an operator or a space",
        )
    if len(spelled) > _MAX_NUMBER_CHARS:
        raise _fail(text, start + 1, f"number literal longer than {_MAX_NUMBER_CHARS} characters")
    plain = spelled.replace("_", "")
    if "." not in plain and "e" not in plain.lower():
        return Token(TokenKind.NUMBER, spelled, start + 1, int(plain)), end
    mantissa, _, exponent = plain.lower().partition("e")
    if exponent and abs(int(exponent)) > _MAX_EXPONENT:
        raise _fail(
            text,
            start + 1,
            f"exponent of {spelled!r} is beyond +/-{_MAX_EXPONENT}; write a smaller number",
        )
    # Fraction reads the decimal exactly: 0.1 is 1/10, as Z3's RealVal("0.1") is.
    return Token(
        TokenKind.NUMBER,
        spelled,
        start + 1,
        Fraction(mantissa) * Fraction(10) ** int(exponent or 0),
    ), end


def _string(text: str, start: int) -> tuple[Token, int]:
    quote = text[start]
    out: list[str] = []
    index = start + 1
    while index < len(text):
        ch = text[index]
        if ch == quote:
            return Token(TokenKind.STRING, text[start : index + 1], start + 1, "".join(out)), (
                index + 1
            )
        if ch == "\n":
            break
        if ch != "\\":
            out.append(ch)
            index += 1
            continue
        escape = text[index + 1 : index + 2]
        if escape in _SIMPLE_ESCAPES:
            out.append(_SIMPLE_ESCAPES[escape])
            index += 2
            continue
        if escape == "u":
            digits = text[index + 2 : index + 6]
            if len(digits) == 4 and all(c in "0123456789abcdefABCDEF" for c in digits):
                code = int(digits, 16)
                if 0xD800 <= code <= 0xDFFF:
                    raise _fail(
                        text, index + 1, f"'\\u{digits}' is a lone surrogate, not a character"
                    )
                out.append(chr(code))
                index += 6
                continue
        raise _fail(
            text,
            index + 1,
            f"unknown escape '\\{escape}' in a string; use \\\\, \\\", \\', \\n, \\r, \\t "
            "or \\uXXXX",
        )
    raise _fail(text, start + 1, "string literal is not closed on this line")


def tokenize(text: str) -> list[Token]:
    """Split ``text`` into tokens, ending with one ``END`` token.

    Raises:
        ConstraintSyntaxError: an unknown character, malformed number or string.
    """
    if len(text) > MAX_EXPRESSION_CHARS:
        raise _fail(
            text,
            MAX_EXPRESSION_CHARS,
            f"expression is longer than {MAX_EXPRESSION_CHARS} "
            "characters; split it into several assertions",
        )
    tokens: list[Token] = []
    index = 0
    length = len(text)
    while index < length:
        ch = text[index]
        if ch in " \t\r\n":
            index += 1
            continue
        if ch.isascii() and ch.isdigit():
            token, index = _number(text, index)
        elif (
            ch == "."
            and index + 1 < length
            and text[index + 1].isascii()
            and (text[index + 1].isdigit())
        ):
            raise _fail(text, index + 1, "write a leading zero: '0.5', not '.5'")
        elif ch in "\"'":
            token, index = _string(text, index)
        elif ch.isascii() and (ch.isalpha() or ch == "_"):
            match = _NAME.match(text, index)
            if match is None:  # pragma: no cover - guarded by the branch condition
                raise _fail(text, index + 1, f"unexpected character {ch!r}")
            token = Token(TokenKind.NAME, match.group(), index + 1)
            index = match.end()
        else:
            for op in _OPERATORS:
                if text.startswith(op, index):
                    token = Token(TokenKind.OP, op, index + 1)
                    index += len(op)
                    break
            else:
                raise _fail(
                    text,
                    index + 1,
                    f"unexpected character {ch!r}; the language has names, numbers, quoted "
                    "strings, arithmetic, comparisons, and/or/not/implies, in [..] and "
                    "if/then/else",
                )
        tokens.append(token)
    tokens.append(Token(TokenKind.END, "", length + 1))
    return tokens
