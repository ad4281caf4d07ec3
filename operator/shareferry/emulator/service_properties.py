"""The File service's properties document: check a Set Service Properties body, merge it, serve it.

The body must be well-formed XML whose root is ``StorageServiceProperties`` and whose elements
follow the File service's schema (metrics, CORS rules, share delete retention, SMB and NFS
protocol settings) with values of the right kind; anything else is the 400
``InvalidXmlDocument`` Azure answers, and nothing changes. Elements the body leaves out keep
their current settings, as on Azure.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping

from shareferry.emulator.xmlbody import invalid_xml, parse_xml_body

#: The top-level elements, in the order Get Service Properties lists them.
_ORDER = ("HourMetrics", "MinuteMetrics", "Cors", "ShareDeleteRetentionPolicy", "ProtocolSettings")
_DEFAULTS = {
    "HourMetrics": "<HourMetrics><Version>1.0</Version><Enabled>false</Enabled>"
    "<RetentionPolicy><Enabled>false</Enabled></RetentionPolicy></HourMetrics>",
    "MinuteMetrics": "<MinuteMetrics><Version>1.0</Version><Enabled>false</Enabled>"
    "<RetentionPolicy><Enabled>false</Enabled></RetentionPolicy></MinuteMetrics>",
    "Cors": "<Cors />",
}
_MAX_CORS_RULES = 5

Check = Callable[[str], bool]
#: An element's schema: a value check for a leaf, or its allowed children.
Schema = Check | Mapping[str, "Schema"]


def _boolean(text: str) -> bool:
    return text.strip() in ("true", "false")


def _days(text: str) -> bool:
    return bool(re.fullmatch(r"[0-9]{1,3}", text.strip(), re.ASCII)) and 1 <= int(text) <= 365


def _seconds(text: str) -> bool:
    return bool(re.fullmatch(r"[0-9]{1,10}", text.strip(), re.ASCII))


def _text(_text: str) -> bool:
    return True


_RETENTION: Schema = {"Enabled": _boolean, "Days": _days}
_METRICS: Schema = {
    "Version": _text,
    "Enabled": _boolean,
    "IncludeAPIs": _boolean,
    "RetentionPolicy": _RETENTION,
}
_CORS_RULE: Schema = {
    "AllowedOrigins": _text,
    "AllowedMethods": _text,
    "MaxAgeInSeconds": _seconds,
    "ExposedHeaders": _text,
    "AllowedHeaders": _text,
}
_ENCRYPTION_IN_TRANSIT: Schema = {"Required": _boolean}
_SCHEMA: Mapping[str, Schema] = {
    "HourMetrics": _METRICS,
    "MinuteMetrics": _METRICS,
    "Cors": {"CorsRule": _CORS_RULE},
    "ShareDeleteRetentionPolicy": _RETENTION,
    "ProtocolSettings": {
        "SMB": {
            "Multichannel": {"Enabled": _boolean},
            "Versions": _text,
            "AuthenticationMethods": _text,
            "KerberosTicketEncryption": _text,
            "ChannelEncryption": _text,
            "EncryptionInTransit": _ENCRYPTION_IN_TRANSIT,
        },
        "NFS": {"EncryptionInTransit": _ENCRYPTION_IN_TRANSIT},
    },
}


def parse(body: bytes) -> dict[str, str]:
    """The top-level elements of a Set Service Properties body, each as canonical XML text."""
    root = parse_xml_body(body, "StorageServiceProperties")
    _check(root, _SCHEMA, "StorageServiceProperties")
    out: dict[str, str] = {}
    for element in root:
        if element.tag in out:
            raise invalid_xml(f"{element.tag} appears twice")
        out[element.tag] = ET.tostring(element, encoding="unicode")
    if len(root.findall("Cors/CorsRule")) > _MAX_CORS_RULES:
        raise invalid_xml(f"at most {_MAX_CORS_RULES} CORS rules are allowed")
    return out


def _check(element: ET.Element, children: Mapping[str, Schema], where: str) -> None:
    if element.attrib:
        raise invalid_xml(f"{where} has attributes")
    if (element.text or "").strip() and children:
        raise invalid_xml(f"{where} has text where elements belong")
    for child in element:
        schema = children.get(child.tag)
        if schema is None:
            raise invalid_xml(f"{where} has an unknown element {child.tag!r}")
        path = f"{where}/{child.tag}"
        if isinstance(schema, Mapping):
            _check(child, schema, path)
        elif len(child) or child.attrib or not schema(child.text or ""):
            raise invalid_xml(f"{path} has an invalid value")


def merged(current: Mapping[str, str], update: Mapping[str, str]) -> dict[str, str]:
    """The settings after a Set Service Properties: ``update`` over ``current``."""
    return {**current, **update}


def document(settings: Mapping[str, str]) -> str:
    """The Get Service Properties document: stored settings over the defaults."""
    combined = {**_DEFAULTS, **settings}
    return (
        "<StorageServiceProperties>"
        + "".join(combined[tag] for tag in _ORDER if tag in combined)
        + "</StorageServiceProperties>"
    )
