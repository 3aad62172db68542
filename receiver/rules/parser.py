"""A recursive-descent parser for the MAL subset; it builds a tree and runs nothing.

Expressions (loosest first)::

    additive       := multiplicative (('+' | '-') multiplicative)*
    multiplicative := unary (('*' | '/') unary)*
    unary          := '-' unary | postfix
    postfix        := primary ('.' NAME '(' [arg (',' arg)*] ')')*
    primary        := NUMBER | NAME | NAME '.' NAME | '(' additive ')'
    arg            := STRING | '[' STRING (',' STRING)* ']' | closure | additive

Closures, the part of Groovy MAL needs for labels::

    closure   := '{' NAME '->' (statements | '{' statements '}') '}'
    statement := NAME '.' NAME '=' cexpr | cexpr          (separated by ';' or nothing)
    cexpr     := or ['?' cexpr ':' cexpr]
    or        := and ('||' and)*
    and       := equality ('&&' equality)*
    equality  := concat [('==' | '!=') concat]
    concat    := unary ('+' unary)*
    unary     := '!' unary | STRING | 'null' | 'true' | 'false' | NAME '.' NAME | '(' cexpr ')'
"""

from __future__ import annotations

from receiver.rules import nodes as n
from receiver.rules.errors import Pos, RuleError
from receiver.rules.lexer import EOF, IDENT, NUMBER, STRING, Token, tokenize
from receiver.rules.source import Source

_ENUMS = {"Layer", "DownsamplingType", "DetectPoint", "K8sRetagType", "TimeUnit"}
_KEYWORDS = {"if", "else", "return", "def", "for", "while", "new", "in", "switch"}


def parse_expression(source: Source) -> n.Expr:
    """The tree of a rule expression; RuleError (with position, no file) if malformed."""
    parser = _Parser(source)
    tree = parser.additive()
    parser.expect(EOF, "the expression should end here")
    return tree


def parse_closure(source: Source) -> n.Closure:
    """The tree of a standalone closure (a file's ``filter``)."""
    parser = _Parser(source)
    if parser.peek().kind != "{":
        parser.fail(parser.peek(), "a filter must be a closure such as { tags -> tags.Namespace == 'AWS/DynamoDB' }")
    closure = parser.closure()
    parser.expect(EOF, "the closure should end here")
    return closure


class _Parser:
    def __init__(self, source: Source) -> None:
        self.source = source
        self.tokens = tokenize(source)
        self.index = 0

    # ---- plumbing ----

    def peek(self, ahead: int = 0) -> Token:
        return self.tokens[min(self.index + ahead, len(self.tokens) - 1)]

    def next(self) -> Token:
        token = self.peek()
        self.index += 1
        return token

    def pos(self, token: Token) -> Pos:
        return self.source.pos(token.offset)

    def fail(self, token: Token, message: str) -> RuleError:
        raise RuleError(message.rstrip(".") + ".", pos=self.pos(token))

    def expect(self, kind: str, context: str) -> Token:
        token = self.peek()
        if token.kind != kind:
            found = "the end" if token.kind == EOF else repr(token.text)
            wanted = "the end" if kind == EOF else repr(kind) if kind not in (IDENT, STRING) else kind.lower()
            self.fail(token, f"expected {wanted} but found {found}: {context}")
        return self.next()

    # ---- expressions ----

    def additive(self) -> n.Expr:
        left = self.multiplicative()
        while self.peek().kind in ("+", "-"):
            op = self.next()
            left = n.Binary(op.kind, left, self.multiplicative(), self.pos(op))
        return left

    def multiplicative(self) -> n.Expr:
        left = self.unary()
        while self.peek().kind in ("*", "/"):
            op = self.next()
            left = n.Binary(op.kind, left, self.unary(), self.pos(op))
        return left

    def unary(self) -> n.Expr:
        token = self.peek()
        if token.kind == "-":
            self.next()
            operand = self.unary()
            if isinstance(operand, n.Number):
                return n.Number(-operand.value, self.pos(token))
            return n.Negate(operand, self.pos(token))
        return self.postfix()

    def postfix(self) -> n.Expr:
        tree = self.primary()
        while self.peek().kind == ".":
            self.next()
            name = self.expect(IDENT, "a method name follows '.'")
            if self.peek().kind != "(":
                self.fail(
                    self.peek(),
                    f"'{name.text}' is not a method call; MAL reads fields only inside closures (tags.name)",
                )
            self.next()
            args = self.args()
            tree = n.Call(tree, str(name.value), args, self.pos(name))
        return tree

    def primary(self) -> n.Expr:
        token = self.peek()
        if token.kind == NUMBER:
            self.next()
            assert isinstance(token.value, float)
            return n.Number(token.value, self.pos(token))
        if token.kind == "(":
            self.next()
            inner = self.additive()
            self.expect(")", "to close the parenthesis")
            return inner
        if token.kind == IDENT:
            self.next()
            if self.peek().kind == "(":
                self.fail(
                    token,
                    f"the function {token.text}(...) is not supported; MAL "
                    "here applies methods to sample families, as in family.sum([...])",
                )
            # Layer.X is an enum constant; family.method( is a method call on a family.
            # (Family names start lowercase: amazonaws_com_...; types start uppercase.)
            if (
                (token.text in _ENUMS or token.text[0].isupper())
                and self.peek().kind == "."
                and self.peek(1).kind == IDENT
                and self.peek(2).kind != "("
            ):
                self.next()
                member = self.next()
                return n.EnumRef(token.text, member.text, self.pos(token))
            return n.Family(token.text, self.pos(token))
        if token.kind == STRING:
            self.fail(token, "a string cannot stand here; strings are method arguments")
        if token.kind == "{":
            self.fail(token, "a closure can only be a method argument, as in tag({tags -> ...})")
        if token.kind == EOF:
            self.fail(token, "the expression ends too early")
        self.fail(token, f"{token.text!r} cannot start an expression")
        raise AssertionError  # fail() always raises

    def args(self) -> tuple[n.Arg, ...]:
        args: list[n.Arg] = []
        if self.peek().kind == ")":
            self.next()
            return ()
        while True:
            args.append(self.arg())
            if self.peek().kind == ",":
                self.next()
                continue
            self.expect(")", "to close the argument list")
            return tuple(args)

    def arg(self) -> n.Arg:
        token = self.peek()
        if token.kind == STRING:
            self.next()
            return n.String(str(token.value), self.pos(token))
        if token.kind == "[":
            return self.string_list()
        if token.kind == "{":
            return self.closure()
        return self.additive()

    def string_list(self) -> n.StringList:
        start = self.expect("[", "a list starts with '['")
        items: list[str] = []
        if self.peek().kind != "]":
            while True:
                item = self.peek()
                if item.kind != STRING:
                    self.fail(item, "lists hold label names as strings, like ['TableName']")
                self.next()
                items.append(str(item.value))
                if self.peek().kind != ",":
                    break
                self.next()
        self.expect("]", "to close the list")
        return n.StringList(tuple(items), self.pos(start))

    # ---- closures ----

    def closure(self) -> n.Closure:
        start = self.expect("{", "a closure starts with '{'")
        params: list[Token] = []
        while self.peek().kind == IDENT:
            params.append(self.next())
            if self.peek().kind != ",":
                break
            self.next()
        if self.peek().kind != "->":
            self.fail(self.peek(), "a closure names its parameter first, as in {tags -> ...}")
        if len(params) != 1:
            self.fail(start, "closures here take exactly one parameter, the labels (as in {tags -> ...})")
        self.next()
        param = params[0].text
        braced = self.peek().kind == "{"
        if braced:  # { tags -> { ... } }: SkyWalking reads the inner braces as a block
            self.next()
        body = self.statements(param)
        if braced:
            self.expect("}", "to close the block")
        self.expect("}", "to close the closure")
        return n.Closure(param, body, self.pos(start))

    def statements(self, param: str) -> tuple[n.Stmt, ...]:
        body: list[n.Stmt] = []
        while True:
            while self.peek().kind == ";":
                self.next()
            if self.peek().kind in ("}", EOF):
                break
            body.append(self.statement(param))
        if not body:
            self.fail(self.peek(), "this closure is empty")
        return tuple(body)

    def statement(self, param: str) -> n.Stmt:
        if (
            self.peek().kind == IDENT
            and self.peek(1).kind == "."
            and self.peek(2).kind == IDENT
            and self.peek(3).kind == "="
        ):
            target = self.next()
            self._check_param(target, param)
            self.next()
            name = self.next()
            self.next()
            return n.Assign(name.text, self.cexpr(param), self.pos(target))
        return self.cexpr(param)

    def cexpr(self, param: str) -> n.CExpr:
        condition = self.c_or(param)
        if self.peek().kind == "?":
            mark = self.next()
            if self.peek().kind == ":":
                self.fail(self.peek(), "the Elvis operator ?: is not supported; write a ? a : b")
            then = self.cexpr(param)
            self.expect(":", "a ternary needs ':' after its first branch")
            otherwise = self.cexpr(param)
            return n.Ternary(condition, then, otherwise, self.pos(mark))
        return condition

    def c_or(self, param: str) -> n.CExpr:
        left = self.c_and(param)
        while self.peek().kind == "||":
            op = self.next()
            left = n.Op("||", left, self.c_and(param), self.pos(op))
        return left

    def c_and(self, param: str) -> n.CExpr:
        left = self.c_equality(param)
        while self.peek().kind == "&&":
            op = self.next()
            left = n.Op("&&", left, self.c_equality(param), self.pos(op))
        return left

    def c_equality(self, param: str) -> n.CExpr:
        left = self.c_concat(param)
        if self.peek().kind in ("==", "!="):
            op = self.next()
            left = n.Op(op.kind, left, self.c_concat(param), self.pos(op))
        return left

    def c_concat(self, param: str) -> n.CExpr:
        left = self.c_unary(param)
        while self.peek().kind == "+":
            op = self.next()
            left = n.Op("+", left, self.c_unary(param), self.pos(op))
        return left

    def c_unary(self, param: str) -> n.CExpr:
        token = self.peek()
        if token.kind == "!":
            self.next()
            return n.Not(self.c_unary(param), self.pos(token))
        if token.kind == STRING:
            self.next()
            return n.Literal(str(token.value), self.pos(token))
        if token.kind == "(":
            self.next()
            inner = self.cexpr(param)
            self.expect(")", "to close the parenthesis")
            return inner
        if token.kind == NUMBER:
            self.fail(token, "numbers are not supported inside closures; labels are strings")
        if token.kind == IDENT:
            if token.text in ("null", "true", "false"):
                self.next()
                return n.Literal({"null": None, "true": True, "false": False}[token.text], self.pos(token))
            if token.text in _KEYWORDS:
                self.fail(
                    token,
                    f"'{token.text}' is not supported inside closures; the "
                    "subset has tag reads, assignments, +, ==, !=, &&, ||, ! and ?:",
                )
            self.next()
            self._check_param(token, param)
            if self.peek().kind == "[":
                self.fail(self.peek(), f"{param}[...] is not supported; write {param}.name")
            self.expect(".", f"read a label as {param}.name")
            name = self.expect(IDENT, f"read a label as {param}.name")
            if self.peek().kind in (".", "(", "["):
                self.fail(self.peek(), "method calls and nested fields are not supported inside closures")
            return n.TagRead(name.text, self.pos(token))
        found = "the end" if token.kind == EOF else repr(token.text)
        self.fail(token, f"expected a label, a string or a condition but found {found}")
        raise AssertionError

    def _check_param(self, token: Token, param: str) -> None:
        if token.text != param:
            self.fail(token, f"unknown name '{token.text}'; this closure's labels are '{param}', as in {param}.name")
