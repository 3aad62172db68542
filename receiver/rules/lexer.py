"""Tokens of the MAL subset: names, numbers, strings and a few operators."""

from __future__ import annotations

from dataclasses import dataclass

from receiver.rules.errors import RuleError
from receiver.rules.source import Source

IDENT = "IDENT"
NUMBER = "NUMBER"
STRING = "STRING"
EOF = "EOF"

# Longest first, so '==' is one token and not two '='.
OPERATORS = (
    "->",
    "==",
    "!=",
    "&&",
    "||",
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    ",",
    ".",
    "+",
    "-",
    "*",
    "/",
    "=",
    "!",
    "?",
    ":",
    ";",
)

_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", "'": "'", '"': '"'}


@dataclass(frozen=True, slots=True)
class Token:
    """One token: ``kind`` is IDENT, NUMBER, STRING, EOF or the operator itself."""

    kind: str
    text: str
    offset: int
    """Where it starts in the expression's Source."""
    value: str | float | None = None


def tokenize(source: Source) -> list[Token]:
    """All tokens of ``source``, ending with EOF; RuleError on a character MAL has not."""
    text = source.text
    tokens: list[Token] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char.isspace():
            i += 1
        elif char.isalpha() or char == "_":
            end = i + 1
            while end < len(text) and (text[end].isalnum() or text[end] == "_"):
                end += 1
            tokens.append(Token(IDENT, text[i:end], i, text[i:end]))
            i = end
        elif char.isdigit():
            i = _number(source, i, tokens)
        elif char in "'\"":
            i = _string(source, i, tokens)
        else:
            for op in OPERATORS:
                if text.startswith(op, i):
                    tokens.append(Token(op, op, i))
                    i += len(op)
                    break
            else:
                raise RuleError(f"the character {char!r} is not part of the supported MAL subset.", pos=source.pos(i))
    tokens.append(Token(EOF, "", len(text)))
    return tokens


def _number(source: Source, start: int, tokens: list[Token]) -> int:
    text = source.text
    end = start
    while end < len(text) and text[end].isdigit():
        end += 1
    # A fraction needs a digit after the dot; otherwise the dot is a method call.
    if end + 1 < len(text) and text[end] == "." and text[end + 1].isdigit():
        end += 1
        while end < len(text) and text[end].isdigit():
            end += 1
    if end < len(text) and text[end] in "eE":
        exp = end + 1
        if exp < len(text) and text[exp] in "+-":
            exp += 1
        if exp < len(text) and text[exp].isdigit():
            end = exp
            while end < len(text) and text[end].isdigit():
                end += 1
    tokens.append(Token(NUMBER, text[start:end], start, float(text[start:end])))
    return end


def _string(source: Source, start: int, tokens: list[Token]) -> int:
    text = source.text
    quote = text[start]
    chars: list[str] = []
    i = start + 1
    while i < len(text):
        char = text[i]
        if char == quote:
            tokens.append(Token(STRING, text[start : i + 1], start, "".join(chars)))
            return i + 1
        if char == "\\" and i + 1 < len(text):
            escaped = _ESCAPES.get(text[i + 1])
            if escaped is None:
                raise RuleError(f"the escape \\{text[i + 1]} is not supported in strings.", pos=source.pos(i))
            chars.append(escaped)
            i += 2
            continue
        if char == "$" and quote == '"':
            # Groovy would interpolate "${...}"; we do not run code found in strings.
            raise RuleError(
                "string interpolation with $ is not supported; use single quotes or concatenate with +.",
                pos=source.pos(i),
            )
        chars.append(char)
        i += 1
    raise RuleError("this string has no closing quote.", pos=source.pos(start))
