"""Parse an XML request body the way Azure does: well-formed, no DTD, the expected root.

Anything else is the 400 ``InvalidXmlDocument`` Azure answers. A document type declaration is
refused outright, so no entity can be declared (and none expanded).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from shareferry.emulator.errors import StorageError


def invalid_xml(why: str) -> StorageError:
    return StorageError(400, "InvalidXmlDocument", f"XML specified is not syntactically valid: {why}.")


def parse_xml_body(body: bytes, root: str) -> ET.Element:
    """The root element of ``body``, which must be named ``root``."""
    if b"<!DOCTYPE" in body.upper():
        raise invalid_xml("a document type declaration is not allowed")
    try:
        element = ET.fromstring(body)  # noqa: S314 - no DOCTYPE, so no entity can be declared
    except ET.ParseError as exc:
        raise invalid_xml(str(exc)) from exc
    if element.tag != root:
        raise invalid_xml(f"the root element must be {root}, not {element.tag!r}")
    return element
