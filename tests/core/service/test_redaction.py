"""Redaction on realistic text: personal data goes, ordinary numbers stay."""

from __future__ import annotations

from core.service.redaction import redact

EMAIL_THREAD = """Hi Dana,
please send the invoice to j.smith+billing@example.co.uk and copy ops@acme-corp.io.
Call me on +44 20 7946 0958 or (555) 123-4567; the office line is 555.987.6543.
Card on file: 4111 1111 1111 1111, exp 04/27. Order #1234567890123 shipped on 2024-01-31.
Server 192.168.10.24 and 2001:db8::8a2e:370:7334 were flagged; version 3.10.2 is fine.
Meeting at 10:30 in room 4.12, budget 25,000 EUR.
"""


def test_realistic_email_is_redacted() -> None:
    """Every e-mail, phone, card and IP goes; dates, versions, amounts and order ids stay."""
    result = redact(EMAIL_THREAD)
    text = result.text
    for secret in [
        "j.smith+billing@example.co.uk",
        "ops@acme-corp.io",
        "+44 20 7946 0958",
        "(555) 123-4567",
        "555.987.6543",
        "4111 1111 1111 1111",
        "192.168.10.24",
        "2001:db8::8a2e:370:7334",
    ]:
        assert secret not in text, secret
    assert result.counts == {"email": 2, "card": 1, "ip": 2, "phone": 3}
    for kept in ["2024-01-31", "3.10.2", "10:30", "4.12", "25,000 EUR", "Hi Dana", "04/27"]:
        assert kept in text, kept
    assert "#1234567890123" in text  # fails the Luhn check: not a card


def test_invalid_ip_and_plain_text_untouched() -> None:
    """999.1.1.1 is not an address; text without personal data is unchanged."""
    assert redact("ping 999.1.1.1 now").text == "ping 999.1.1.1 now"
    plain = "The quick brown fox jumps over the lazy dog in 2024."
    assert redact(plain).text == plain
