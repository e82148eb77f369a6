"""Redaction of personal data from text before it is saved or exported.

Patterns: e-mail addresses, phone numbers (international and common national formats),
payment card numbers (13-19 digits, Luhn-checked so order numbers survive), and IPv4/IPv6
addresses. Each match becomes a typed placeholder such as ``[EMAIL]``.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")
_CARD = re.compile(r"(?<![\d-])(?:\d[ -]?){12,18}\d(?![\d-])")
_IPV4 = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])")
_IPV6 = re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])")
# +44 20 7946 0958, (555) 123-4567, 555-123-4567, 030 1234567, +1.555.123.4567
_PHONE = re.compile(
    r"(?<![\w+#])(?:\+\d{1,3}[\s.-]?)?(?:\(\d{1,4}\)[\s.-]?)?\d{2,4}(?:[\s.-]?\d{2,4}){1,4}(?![\w])"
)


@dataclass(frozen=True)
class RedactionResult:
    text: str
    counts: dict[str, int]


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, char in enumerate(reversed(digits)):
        value = int(char)
        if i % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def _is_card(match: str) -> bool:
    digits = re.sub(r"\D", "", match)
    return 13 <= len(digits) <= 19 and _luhn_ok(digits)


def _is_ip(match: str) -> bool:
    try:
        ipaddress.ip_address(match)
    except ValueError:
        return False
    return True


def _is_phone(match: str) -> bool:
    digits = re.sub(r"\D", "", match)
    # Dates (2024-01-31), years and short numbers are not phone numbers.
    if not 7 <= len(digits) <= 15:
        return False
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", match.strip()):
        return False
    # An unbroken run of digits is an id unless written in international form.
    return bool(re.search(r"[\s.()-]", match)) or match.startswith("+")


def redact(text: str) -> RedactionResult:
    """Replace personal data in `text` with placeholders; counts say what was found."""
    counts = {"email": 0, "card": 0, "ip": 0, "phone": 0}

    def replace(kind: str, check=None):
        def substitute(match: re.Match[str]) -> str:
            if check is not None and not check(match.group(0)):
                return match.group(0)
            counts[kind] += 1
            return f"[{kind.upper()}]"

        return substitute

    # Order matters: cards and IPs before phones, which would otherwise claim their digits.
    text = _EMAIL.sub(replace("email"), text)
    text = _CARD.sub(replace("card", _is_card), text)
    text = _IPV6.sub(replace("ip", _is_ip), text)
    text = _IPV4.sub(replace("ip", _is_ip), text)
    text = _PHONE.sub(replace("phone", _is_phone), text)
    return RedactionResult(text, counts)
