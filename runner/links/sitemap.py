"""URLs of an XML sitemap or sitemap index (sitemaps.org protocol 0.9).

Hostile XML stays data: libxml2 runs with no DTD loading, no entity
substitution, no network and its default size limits (``huge_tree=False``),
and any document that declares a DOCTYPE is refused outright, since no
sitemap needs one (this is what defusedxml's ``forbid_dtd`` does). That
covers XXE file reads, external DTD fetches and billion-laughs expansion.

Compressed bodies (``sitemap.xml.gz``) must be decompressed by the caller,
under its own size limit; gzip bytes are refused here rather than inflated.
Elements are matched by local name, so the sitemaps.org namespace, the old
Google 0.84 one and none at all are all accepted.
"""

from __future__ import annotations

from lxml import etree

from .model import Link, LinkKind, make_link

_GZIP_MAGIC = b"\x1f\x8b"


class SitemapError(ValueError):
    """The body is not a sitemap we accept (malformed, compressed, DTD, other root)."""


def extract_sitemap(body: bytes, *, source: str) -> tuple[list[Link], bool]:
    """The ``<loc>`` URLs of *body* and whether it is a sitemap index.

    Each link's kind is ``sitemap`` (a page of a ``<urlset>``) or
    ``sitemap-index`` (a child sitemap of a ``<sitemapindex>``); relative
    locations (not allowed by the protocol) are resolved against *source*.
    Raises ``SitemapError`` for anything else.
    """
    root = _parse(body)
    name = etree.QName(root).localname
    kind: LinkKind
    if name == "urlset":
        entry, kind, is_index = "url", "sitemap", False
    elif name == "sitemapindex":
        entry, kind, is_index = "sitemap", "sitemap-index", True
    else:
        raise SitemapError(f"root element is <{name}>, not <urlset> or <sitemapindex>")
    return _locations(root, entry, kind, source), is_index


def _parse(body: bytes) -> etree._Element:
    if body.startswith(_GZIP_MAGIC):
        raise SitemapError("gzip-compressed sitemap: decompress it first")
    parser = etree.XMLParser(
        resolve_entities=False,
        load_dtd=False,
        no_network=True,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )
    try:
        root = etree.fromstring(body, parser)
    except etree.XMLSyntaxError as exc:
        raise SitemapError(f"not well-formed XML: {exc}") from None
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None:
        raise SitemapError("sitemaps may not declare a DOCTYPE")
    return root


def _locations(root: etree._Element, entry: str, kind: LinkKind, source: str) -> list[Link]:
    links: list[Link] = []
    for child in root:
        if not isinstance(child.tag, str) or etree.QName(child).localname != entry:
            continue
        for loc in child:
            if isinstance(loc.tag, str) and etree.QName(loc).localname == "loc":
                # Entity references are never substituted, so only plain text is read.
                url = (loc.text or "").strip()
                if url:
                    line = loc.sourceline or 1
                    links.append(make_link(url, source, source=source, line=line, kind=kind))
    return links
