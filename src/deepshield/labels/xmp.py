"""XMP packets carrying the `TC260:AIGC` property, written as an element or an attribute, read in both forms.

Existing XMP is kept: the property is set inside the packet's first rdf:Description, other metadata
stays. Reading scans raw bytes for an XMP packet, so it works whatever the container.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Literal

TC260_NS = "http://www.tc260.org.cn/ns/AIGC/1.0/"
RDF_NS = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
X_NS = "adobe:ns:meta/"
XMP_HEADER = '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'
XMP_TRAILER = '<?xpacket end="w"?>'

Form = Literal["element", "attribute"]

for _p, _u in (
    ("x", X_NS),
    ("rdf", RDF_NS),
    ("TC260", TC260_NS),
    ("dc", "http://purl.org/dc/elements/1.1/"),
    ("xmp", "http://ns.adobe.com/xap/1.0/"),
    ("xmpMM", "http://ns.adobe.com/xap/1.0/mm/"),
    ("photoshop", "http://ns.adobe.com/photoshop/1.0/"),
    ("tiff", "http://ns.adobe.com/tiff/1.0/"),
    ("exif", "http://ns.adobe.com/exif/1.0/"),
    ("Iptc4xmpExt", "http://iptc.org/std/Iptc4xmpExt/2008-02-29/"),
    ("stEvt", "http://ns.adobe.com/xap/1.0/sType/ResourceEvent#"),
):
    ET.register_namespace(_p, _u)

_PACKET_RE = re.compile(rb"<x:xmpmeta[\s>].*?</x:xmpmeta>", re.S)
_AIGC_TAG = f"{{{TC260_NS}}}AIGC"


def _escape_attr(s: str) -> str:
    return s.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;").replace(">", "&gt;")


def _escape_text(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def new_packet(aigc_json: str, form: Form = "element") -> str:
    if form == "attribute":
        desc = f'<rdf:Description rdf:about="" xmlns:TC260="{TC260_NS}" TC260:AIGC="{_escape_attr(aigc_json)}"/>'
    else:
        desc = (
            f'<rdf:Description rdf:about="" xmlns:TC260="{TC260_NS}">\n'
            f"   <TC260:AIGC>{_escape_text(aigc_json)}</TC260:AIGC>\n  </rdf:Description>"
        )
    return (
        f'{XMP_HEADER}\n<x:xmpmeta xmlns:x="{X_NS}">\n <rdf:RDF xmlns:rdf="{RDF_NS}">\n  {desc}\n'
        f" </rdf:RDF>\n</x:xmpmeta>\n{XMP_TRAILER}"
    )


def set_in_packet(packet: str | None, aigc_json: str, form: Form = "element") -> str:
    """Return an XMP packet with TC260:AIGC set, keeping whatever else `packet` holds."""
    if not packet:
        return new_packet(aigc_json, form)
    m = _PACKET_RE.search(packet.encode("utf-8"))
    if not m:
        return new_packet(aigc_json, form)
    try:
        root = ET.fromstring(m.group(0))
    except ET.ParseError:
        return new_packet(aigc_json, form)
    rdf = root.find(f"{{{RDF_NS}}}RDF")
    if rdf is None:
        return new_packet(aigc_json, form)
    descs = rdf.findall(f"{{{RDF_NS}}}Description")
    for dsc in descs:  # one value only: the new one replaces our previous one
        dsc.attrib.pop(_AIGC_TAG, None)
        for el in dsc.findall(_AIGC_TAG):
            dsc.remove(el)
    desc = descs[0] if descs else ET.SubElement(rdf, f"{{{RDF_NS}}}Description", {f"{{{RDF_NS}}}about": ""})
    if form == "attribute":
        desc.set(_AIGC_TAG, aigc_json)
    else:
        ET.SubElement(desc, _AIGC_TAG).text = aigc_json
    body = ET.tostring(root, encoding="unicode")
    return f"{XMP_HEADER}\n{body}\n{XMP_TRAILER}"


def find_packet(data: bytes) -> str | None:
    m = _PACKET_RE.search(data)
    return m.group(0).decode("utf-8", "replace") if m else None


def read_aigc(packet: str) -> str | None:
    """The AIGC JSON string from an XMP packet, in element or attribute form (also rdf:value/Alt forms)."""
    try:
        root = ET.fromstring(packet.encode("utf-8"))
    except ET.ParseError:
        m = re.search(r'TC260:AIGC\s*=\s*"([^"]*)"', packet) or re.search(
            r"<TC260:AIGC>(.*?)</TC260:AIGC>", packet, re.S
        )
        if not m:
            return None
        return m.group(1).replace("&quot;", '"').replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    for el in root.iter():
        if _AIGC_TAG in el.attrib:
            return el.attrib[_AIGC_TAG]
        if el.tag == _AIGC_TAG:
            text = "".join(el.itertext()).strip()
            if text:
                return text
    return None


def read_aigc_anywhere(data: bytes) -> str | None:
    for m in _PACKET_RE.finditer(data):
        v = read_aigc(m.group(0).decode("utf-8", "replace"))
        if v is not None:
            return v
    return None
