"""A whitelist parser for constraint expressions (recursive descent; never ``eval``).

Grammar, lowest precedence first::

    conditional := "if" implication "then" implication ["else" conditional] | implication
    implication := disjunction ["implies" conditional]          (right-associative)
    disjunction := conjunction ("or" conjunction)*
    conjunction := negation ("and" negation)*
    negation    := "not" negation | comparison
    comparison  := additive (("=="|"!="|"<"|"<="|">"|">=") additive)*
                 | additive ["not"] "in" "[" [literal ("," literal)* [","]] "]"
    additive    := term (("+"|"-") term)*
    term        := unary (("*"|"/"|"%") unary)*
    unary       := ("-"|"+") unary | atom
    atom        := NUMBER | STRING | "true" | "false" | NAME | "(" conditional ")"

Everything else is rejected with the column and what to write instead: attribute
access, calls, indexing, lambdas, comprehensions, imports, ``**``, ``//``, dict
and set literals, statements. Nesting depth and size are bounded, so hostile
input can neither recurse the interpreter to death nor build huge trees.
"""

from __future__ import annotations

from typing import Final, cast

from ._ast import (
    COMPARE_OPERATORS,
    KEYWORDS,
    Arith,
    ArithOp,
    Compare,
    CompareOp,
    Conditional,
    Expr,
    Implies,
    Literal,
    Logic,
    Membership,
    Name,
    Unary,
    VarType,
    depth_of,
    walk,
)
from ._errors import ConstraintSyntaxError
from ._lexer import Token, TokenKind, tokenize

MAX_NESTING: Final = 32  # parentheses, prefix operators and if/then/else inside each other
MAX_DEPTH: Final = 64  # height of the finished tree
MAX_NODES: Final = 1_000
MAX_LIST_ITEMS: Final = 256

_COMPARE_OPS: Final = frozenset(COMPARE_OPERATORS)

# Words that mean something in Python but nothing here, and what to do instead.
_FORBIDDEN_WORDS: Final = {
    "import": "imports are not allowed in constraint expressions",
    "from": "imports are not allowed in constraint expressions",
    "lambda": "lambdas are not allowed in constraint expressions",
    "for": "comprehensions and loops are not allowed; list the values: x in [1, 2, 3]",
    "while": "loops are not allowed in constraint expressions",
    "def": "definitions are not allowed in constraint expressions",
    "class": "definitions are not allowed in constraint expressions",
    "return": "statements are not allowed; write a single expression",
    "yield": "generators are not allowed in constraint expressions",
    "await": "await is not allowed in constraint expressions",
    "async": "async is not allowed in constraint expressions",
    "with": "statements are not allowed; write a single expression",
    "as": "'as' is not allowed in constraint expressions",
    "is": "use '==' or '!=' to compare values",
    "del": "statements are not allowed; write a single expression",
    "global": "statements are not allowed; write a single expression",
    "nonlocal": "statements are not allowed; write a single expression",
    "assert": "write the condition itself; every entry under 'assert' is already an assertion",
    "raise": "statements are not allowed; write a single expression",
    "try": "statements are not allowed; write a single expression",
    "except": "statements are not allowed; write a single expression",
    "finally": "statements are not allowed; write a single expression",
    "pass": "statements are not allowed; write a single expression",
    "break": "statements are not allowed; write a single expression",
    "continue": "statements are not allowed; write a single expression",
    "elif": "write 'if a then x else if b then y else z'",
    "None": "there is no null: give the variable a 'default' for a missing field",
    "null": "there is no null: give the variable a 'default' for a missing field",
    "exec": "function calls are not allowed in constraint expressions",
    "eval": "function calls are not allowed in constraint expressions",
}

_OPERATOR_ADVICE: Final = {
    "**": "the power operator '**' is not supported; multiply explicitly (x * x)",
    "//": "floor division '//' is not supported; use '/' (exact) or '%'",
    "=": "use '==' to compare; assignment is not allowed",
    "!": "use 'not' for negation",
    "&&": "use 'and'",
    "||": "use 'or'",
    "&": "bitwise operators are not supported; use 'and'",
    "|": "bitwise operators are not supported; use 'or'",
    "^": "bitwise operators are not supported",
    "~": "bitwise operators are not supported; use 'not'",
    "->": "use 'implies'",
    "=>": "use 'implies'",
    "{": "dict and set literals are not allowed; use x in [a, b] for membership",
    "}": "dict and set literals are not allowed; use x in [a, b] for membership",
    ":": "':' is not allowed (no slices, dicts, lambdas or annotations)",
    ";": "write a single expression; ';' separates statements, which are not allowed",
    "@": "decorators and matrix products are not allowed",
}


def _check_words(text: str, tokens: list[Token]) -> None:
    for token in tokens:
        if token.kind is TokenKind.NAME and token.text in _FORBIDDEN_WORDS:
            raise ConstraintSyntaxError(
                f"{token.text!r}: {_FORBIDDEN_WORDS[token.text]}",
                expression=text,
                column=token.column,
            )
        if token.kind is TokenKind.NAME and token.text.startswith("__"):
            raise ConstraintSyntaxError(
                f"names starting with '__' are not allowed ({token.text!r})",
                expression=text,
                column=token.column,
            )


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        _check_words(text, self.tokens)
        self.index = 0
        self.nesting = 0

    # ── token helpers ────────────────────────────────────────────────────────

    @property
    def current(self) -> Token:
        return self.tokens[self.index]

    def peek(self, offset: int = 1) -> Token:
        return self.tokens[min(self.index + offset, len(self.tokens) - 1)]

    def advance(self) -> Token:
        token = self.tokens[self.index]
        if token.kind is not TokenKind.END:
            self.index += 1
        return token

    def is_word(self, word: str) -> bool:
        token = self.current
        return token.kind is TokenKind.NAME and token.text == word

    def is_op(self, op: str) -> bool:
        token = self.current
        return token.kind is TokenKind.OP and token.text == op

    def fail(self, problem: str, token: Token | None = None) -> ConstraintSyntaxError:
        where = token or self.current
        return ConstraintSyntaxError(problem, expression=self.text, column=where.column)

    def describe(self, token: Token) -> str:
        if token.kind is TokenKind.END:
            return "the end of the expression"
        return f"{token.text!r}"

    def unexpected(self, expected: str) -> ConstraintSyntaxError:
        token = self.current
        if token.kind is TokenKind.OP and token.text in _OPERATOR_ADVICE:
            return self.fail(_OPERATOR_ADVICE[token.text])
        return self.fail(f"expected {expected}, found {self.describe(token)}")

    def expect_word(self, word: str, context: str) -> Token:
        if not self.is_word(word):
            raise self.unexpected(f"'{word}' {context}")
        return self.advance()

    def enter(self) -> None:
        self.nesting += 1
        if self.nesting > MAX_NESTING:
            raise self.fail(
                f"expression nests deeper than {MAX_NESTING} levels; split it into several "
                "assertions"
            )

    def leave(self) -> None:
        self.nesting -= 1

    # ── grammar ──────────────────────────────────────────────────────────────

    def parse(self) -> Expr:
        if self.current.kind is TokenKind.END:
            raise self.fail("the expression is empty")
        expr = self.conditional()
        token = self.tokens[self.index]
        if token.kind is not TokenKind.END:
            if token.kind is TokenKind.OP and token.text in _OPERATOR_ADVICE:
                raise self.fail(_OPERATOR_ADVICE[token.text])
            if token.kind is TokenKind.OP and token.text == ")":
                raise self.fail("unbalanced ')'")
            raise self.fail(
                f"unexpected {self.describe(token)} after a complete expression; join "
                "conditions with 'and' / 'or'"
            )
        return expr

    def conditional(self) -> Expr:
        if not self.is_word("if"):
            return self.implication()
        start = self.advance()
        self.enter()
        condition = self.implication()
        self.expect_word("then", "after the condition of 'if'")
        then = self.implication()
        otherwise: Expr | None = None
        if self.is_word("else"):
            self.advance()
            otherwise = self.conditional()
        self.leave()
        return Conditional(condition, then, otherwise, column=start.column)

    def implication(self) -> Expr:
        premise = self.disjunction()
        if not self.is_word("implies"):
            return premise
        token = self.advance()
        self.enter()
        conclusion = self.conditional()
        self.leave()
        return Implies(premise, conclusion, column=token.column)

    def disjunction(self) -> Expr:
        first = self.conjunction()
        if not self.is_word("or"):
            return first
        operands = [first]
        while self.is_word("or"):
            self.advance()
            operands.append(self.conjunction())
        return Logic("or", tuple(operands), column=_column(first))

    def conjunction(self) -> Expr:
        first = self.negation()
        if not self.is_word("and"):
            return first
        operands = [first]
        while self.is_word("and"):
            self.advance()
            operands.append(self.negation())
        return Logic("and", tuple(operands), column=_column(first))

    def negation(self) -> Expr:
        if not self.is_word("not"):
            return self.comparison()
        token = self.advance()
        if self.is_word("in"):
            raise self.fail("'not in' needs a value before it: x not in [..]", token)
        self.enter()
        operand = self.negation()
        self.leave()
        return Unary("not", operand, column=token.column)

    def comparison(self) -> Expr:
        first = self.additive()
        if self.is_word("in") or (self.is_word("not") and self.peek().text == "in"):
            return self.membership(first)
        ops: list[CompareOp] = []
        operands = [first]
        while self.current.kind is TokenKind.OP and self.current.text in _COMPARE_OPS:
            ops.append(cast(CompareOp, self.advance().text))
            operands.append(self.additive())
        if not ops:
            return first
        if self.is_word("in") or (self.is_word("not") and self.peek().text == "in"):
            raise self.fail("'in' cannot be chained with comparisons; use parentheses")
        return Compare(tuple(ops), tuple(operands), column=_column(first))

    def membership(self, operand: Expr) -> Expr:
        negated = self.is_word("not")
        if negated:
            self.advance()
        keyword = self.advance()
        if not self.is_op("["):
            raise self.unexpected('a list of literals after \'in\', e.g. in ["a", "b"]')
        self.advance()
        items: list[Literal] = []
        while not self.is_op("]"):
            items.append(self.list_item())
            if len(items) > MAX_LIST_ITEMS:
                raise self.fail(f"a list may hold at most {MAX_LIST_ITEMS} values")
            if self.is_op(","):
                self.advance()
                continue
            if not self.is_op("]"):
                raise self.unexpected("',' or ']' in the list")
        self.advance()
        node = Membership(operand, tuple(items), negated, column=keyword.column)
        if self.current.kind is TokenKind.OP and self.current.text in _COMPARE_OPS:
            raise self.fail("'in' cannot be chained with comparisons; use parentheses")
        return node

    def list_item(self) -> Literal:
        token = self.current
        sign = 1
        if self.is_op("-"):
            self.advance()
            sign = -1
            if self.current.kind is not TokenKind.NUMBER:
                raise self.unexpected("a number after '-' in the list")
        literal = self.literal()
        if literal is None:
            if self.is_op("["):
                raise self.fail("nested lists are not allowed")
            raise self.unexpected(
                "a literal (number, quoted string, true or false); lists hold constants only"
            )
        if sign < 0:
            return Literal(-literal.value, literal.type, column=token.column)  # type: ignore[operator]
        return literal

    def literal(self) -> Literal | None:
        token = self.current
        if token.kind is TokenKind.NUMBER:
            self.advance()
            value = token.value
            kind = VarType.INT if isinstance(value, int) else VarType.REAL
            return Literal(cast(int, value), kind, column=token.column)
        if token.kind is TokenKind.STRING:
            self.advance()
            return Literal(cast(str, token.value), VarType.STRING, column=token.column)
        if token.kind is TokenKind.NAME and token.text in ("true", "True", "false", "False"):
            self.advance()
            return Literal(token.text in ("true", "True"), VarType.BOOL, column=token.column)
        return None

    def additive(self) -> Expr:
        left = self.term()
        while self.current.kind is TokenKind.OP and self.current.text in ("+", "-"):
            token = self.advance()
            right = self.term()
            left = Arith(cast(ArithOp, token.text), left, right, column=token.column)
        return left

    def term(self) -> Expr:
        left = self.unary()
        while self.current.kind is TokenKind.OP and self.current.text in ("*", "/", "%"):
            token = self.advance()
            right = self.unary()
            left = Arith(cast(ArithOp, token.text), left, right, column=token.column)
        return left

    def unary(self) -> Expr:
        if not (self.is_op("-") or self.is_op("+")):
            return self.postfix(self.atom())
        token = self.advance()
        if token.text == "-" and self.current.kind is TokenKind.NUMBER:
            # "-5" is the literal -5 (so "x / -2" has a constant divisor).
            number = self.postfix(self.atom())
            if isinstance(number, Literal):
                return Literal(-number.value, number.type, column=token.column)  # type: ignore[operator]
        self.enter()
        operand = self.unary()
        self.leave()
        return Unary("-" if token.text == "-" else "+", operand, column=token.column)

    def postfix(self, expr: Expr) -> Expr:
        token = self.current
        if token.kind is not TokenKind.OP:
            return expr
        if token.text == ".":
            attribute = self.peek()
            shown = f"'.{attribute.text}'" if attribute.kind is TokenKind.NAME else "'.'"
            raise self.fail(
                f"attribute access ({shown}) is not allowed; bind the field to a variable "
                "under 'vars' (e.g. amount: {field: payload.amount, type: Real}) and use its name"
            )
        if token.text == "(":
            raise self.fail("function calls are not allowed in constraint expressions")
        if token.text == "[":
            raise self.fail("indexing and slicing are not allowed; bind the field under 'vars'")
        return expr

    def atom(self) -> Expr:
        literal = self.literal()
        if literal is not None:
            return literal
        token = self.current
        if token.kind is TokenKind.NAME:
            if token.text == "if":
                raise self.fail(
                    "an if/then/else inside another expression must be in parentheses: "
                    "x >= (if a then 1 else 2)"
                )
            if token.text in KEYWORDS:
                raise self.fail(f"expected a value, found the keyword {token.text!r}")
            self.advance()
            return Name(token.text, column=token.column)
        if self.is_op("("):
            self.advance()
            if self.is_op(")"):
                raise self.fail("empty parentheses: tuples and calls are not allowed")
            self.enter()
            inner = self.conditional()
            self.leave()
            if self.is_op(","):
                raise self.fail("tuples are not allowed; use x in [a, b] for membership")
            if not self.is_op(")"):
                raise self.unexpected("')' to close the '('")
            self.advance()
            return inner
        if self.is_op("["):
            raise self.fail("a list is only allowed after 'in' (x in [1, 2])")
        raise self.unexpected("a value (a name, number, quoted string, true/false or '(')")


def _column(expr: Expr) -> int:
    return expr.column


def parse_expression(text: str) -> Expr:
    """Parse one expression of the constraint language into an untyped AST.

    Example::

        parse_expression("amount <= budget and currency in ['EUR', 'USD']")

    Raises:
        ConstraintSyntaxError: the only exception it raises, for any text outside the
            language, naming the column and what to write instead.
    """
    if not isinstance(text, str):
        raise ConstraintSyntaxError(
            f"an expression must be a string, not {type(text).__name__}",
            expression=repr(text),
            column=1,
        )
    expr = _Parser(text).parse()
    if depth_of(expr) > MAX_DEPTH:
        raise ConstraintSyntaxError(
            f"expression is nested deeper than {MAX_DEPTH} levels (long chains of '+' or "
            "'-' count); split it into several assertions",
            expression=text,
            column=1,
        )
    if sum(1 for _ in walk(expr)) > MAX_NODES:
        raise ConstraintSyntaxError(
            f"expression has more than {MAX_NODES} parts; split it into several assertions",
            expression=text,
            column=1,
        )
    return expr
