"""WeChat message bodies as flat dicts, parsed without trusting the sender.

Official Account and WeCom callbacks (and the plaintext inside an encrypted one) are an `<xml>`
root whose children are the message's fields, mostly text in CDATA:

    <xml><ToUserName><![CDATA[gh_1]]></ToUserName><MsgType><![CDATA[text]]></MsgType>...</xml>

Parsing goes through defusedxml with DTDs forbidden: any DOCTYPE is refused before an entity
can be declared, so no file or URL is ever read and nothing expands. The body's size is the
HTTP layer's limit, not this module's.

Nested fields (WeCom's <ScanCodeInfo>, <SendPicsInfo>, <SendLocationInfo>) are not flattened:
such a field appears with the value "" and its children are ignored, because the bot reads
only flat fields and a flattened <PicList><item> would collide with itself.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from xml.etree.ElementTree import ParseError

import defusedxml.ElementTree as SafeElementTree
from defusedxml import DefusedXmlException

_ROOT_TAG = "xml"
# Tags come from our own code, but a bad one would corrupt the whole reply.
_TAG = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
# Characters XML 1.0 cannot carry at all, escaped or not (C0 controls other than tab, newline
# and carriage return; lone surrogates; U+FFFE and U+FFFF).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


class XmlError(ValueError):
    """Malformed, hostile, or not a WeChat message (HTTP 400)."""


def _decode(body: bytes) -> str:
    try:
        # "utf-8-sig" is strict UTF-8 that also drops a leading byte order mark.
        return body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise XmlError("body is not UTF-8") from exc


def parse_message(body: bytes) -> dict[str, str]:
    """The `<xml>` root's direct children as {tag: text}, "" for empty or nested ones."""
    # Decoding first and parsing text makes expat ignore any encoding the declaration claims.
    text = _decode(body)
    try:
        root = SafeElementTree.fromstring(
            text, forbid_dtd=True, forbid_entities=True, forbid_external=True
        )
    except (DefusedXmlException, ParseError) as exc:
        raise XmlError(f"not acceptable XML: {type(exc).__name__}") from exc
    if root.tag != _ROOT_TAG:
        raise XmlError(f"root element is not <{_ROOT_TAG}>")
    fields: dict[str, str] = {}
    for child in root:
        # One value per field: two <Content> elements would leave "the" content ambiguous.
        if child.tag in fields:
            raise XmlError(f"field {child.tag!r} appears twice")
        fields[child.tag] = "" if len(child) else (child.text or "")
    return fields


def _cdata(text: str) -> str:
    # "]]>" cannot appear inside CDATA: end the section between "]]" and ">" and open another.
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def _render_value(value: str | int) -> str:
    # bool is an int, but "True" is no value WeChat expects.
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise TypeError(f"field values are str or int, not {type(value).__name__}")
    if isinstance(value, int):
        return str(value)
    # Dropped rather than refused: a resident's stray control character must not cost the
    # whole reply.
    return _cdata(_NOT_XML.sub("", value))


def render_message(fields: Mapping[str, str | int]) -> str:
    """A flat `<xml>` message: str values in CDATA, ints bare, in the mapping's order."""
    parts = [f"<{_ROOT_TAG}>"]
    for tag, value in fields.items():
        if not _TAG.fullmatch(tag):
            raise ValueError(f"not a usable tag: {tag!r}")
        parts.append(f"<{tag}>{_render_value(value)}</{tag}>")
    parts.append(f"</{_ROOT_TAG}>")
    return "".join(parts)
