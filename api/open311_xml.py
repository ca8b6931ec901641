"""Open311 GeoReport v2 answers in JSON or XML, with the same content.

Every GeoReport v2 endpoint answers in the format its path names (``.json`` or ``.xml``),
errors included. The XML uses the standard's element names: a list is a root element holding
one element per item (``<services><service>``, ``<service_requests><request>``,
``<errors><error>``), a field is an element of its name, a nested list is an element holding
one element per item (``<attributes><attribute>``, ``<values><value>``,
``<endpoints><endpoint>``, ``<formats><format>``). ``null`` is an empty element, booleans are
``true``/``false``. Serialised with :mod:`xml.etree.ElementTree` (text escaped; characters XML
1.0 does not allow, such as control characters in a citizen's description, become U+FFFD).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from typing import Any

from fastapi.responses import JSONResponse, Response

#: Media type of the XML answers (the one the standard's discovery documents list).
XML_MEDIA_TYPE = "text/xml; charset=utf-8"
#: The formats a path may name.
FORMATS = ("json", "xml")

#: Root element and item element of each kind of list answer.
LIST_ELEMENTS: Mapping[str, tuple[str, str]] = {
    "services": ("services", "service"),
    "requests": ("service_requests", "request"),
    "errors": ("errors", "error"),
}
#: Root element of each kind of single-object answer.
OBJECT_ELEMENTS: Mapping[str, str] = {
    "service_definition": "service_definition",
    "discovery": "discovery",
}
#: Item element of a nested list, by the list's element name.
ITEM_ELEMENTS: Mapping[str, str] = {
    "attributes": "attribute",
    "values": "value",
    "endpoints": "endpoint",
    "formats": "format",
}

_NOT_XML = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return _NOT_XML.sub("\ufffd", str(value))


def _fill(element: ET.Element, value: Any) -> None:
    """``value`` (a JSON value) as the content of ``element``."""
    if isinstance(value, Mapping):
        for key, v in value.items():
            _fill(ET.SubElement(element, str(key)), v)
    elif isinstance(value, list | tuple):
        item = ITEM_ELEMENTS.get(element.tag, "item")
        for v in value:
            _fill(ET.SubElement(element, item), v)
    else:
        element.text = _text(value)


def to_xml(kind: str, body: Any) -> bytes:
    """A JSON answer of ``kind`` (``services``, ``requests``, ``errors``,
    ``service_definition``, ``discovery``) as an XML document (UTF-8, with declaration).

    Raises:
        KeyError: an unknown kind.
    """
    if kind in LIST_ELEMENTS:
        root_tag, item_tag = LIST_ELEMENTS[kind]
        root = ET.Element(root_tag)
        for item in body:
            _fill(ET.SubElement(root, item_tag), item)
    else:
        root = ET.Element(OBJECT_ELEMENTS[kind])
        _fill(root, body)
    return bytes(ET.tostring(root, encoding="utf-8", xml_declaration=True))


def answer(fmt: str, kind: str, body: Any, *, status: int = 200) -> Response:
    """The answer in the path's format: JSON as is, or XML (:func:`to_xml`)."""
    if fmt == "xml":
        return Response(to_xml(kind, body), status_code=status, media_type=XML_MEDIA_TYPE)
    return JSONResponse(body, status_code=status)


def error_answer(fmt: str, status: int, description: str) -> Response:
    """``[{"code": status, "description": ...}]`` (``<errors><error>`` in XML) with that
    HTTP status."""
    return answer(fmt, "errors", [{"code": status, "description": description}], status=status)


__all__ = ["FORMATS", "ITEM_ELEMENTS", "LIST_ELEMENTS", "OBJECT_ELEMENTS", "XML_MEDIA_TYPE", "answer", "error_answer",
           "to_xml"]
