"""Text from the spec and inventories made safe for the formats the estate writes.

Free text (a council's name, a finding's message, a resource name) may hold any character a YAML or
JSON file can: quotes, `<`, `]]>`, control characters, even a lone UTF-16 surrogate (`"\\ud800"` in a
double-quoted YAML string). Each output escapes its own syntax (ElementTree for XML, `json.dumps` for
JSON, Jinja2's autoescape for HTML); what no escape can carry is replaced here, on the whole text a
renderer produced, so the file stays well-formed and can be written as UTF-8:

- XML 1.0 (JUnit, and the HTML page) allows only `Char ::= #x9 | #xA | #xD | [#x20-#xD7FF] |
  [#xE000-#xFFFD] | [#x10000-#x10FFFF]` (https://www.w3.org/TR/xml/#charsets), even as a character
  reference: every other character becomes U+FFFD.
- JSON (SARIF) escapes every control character itself (RFC 8259 s.7), but a lone surrogate cannot be
  encoded as UTF-8 (and strict readers refuse its `\\ud800` escape): it becomes U+FFFD.

The Ansible roles' templates escape at each emission point with Ansible's own filters (`to_json` for
JSON, `quote` for POSIX sh) or keep only the characters the value's syntax can hold (`regex_replace`):
see each template's header and tests/test_generators_escape.py.
"""

from __future__ import annotations

import re

REPLACEMENT = "\ufffd"
_NOT_XML_CHAR = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def xml_text(text: str) -> str:
    """`text` with every character XML 1.0 cannot hold (control characters, U+FFFE/U+FFFF, lone
    surrogates) replaced by U+FFFD. Safe on serialised XML or HTML: none of them is markup."""
    return _NOT_XML_CHAR.sub(REPLACEMENT, text)


def unicode_text(text: str) -> str:
    """`text` with every lone surrogate replaced by U+FFFD, so that it encodes as UTF-8."""
    return _SURROGATE.sub(REPLACEMENT, text)
