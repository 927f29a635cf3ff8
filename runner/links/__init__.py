"""Link extraction for crawling and link checking (issue #5).

* ``extract_html`` / ``html_ids``: HTML through libxml2 (``runner.links.html``);
* ``extract_markdown``: a small Markdown scanner (``runner.links.markdown``);
* ``extract_sitemap``: sitemaps and sitemap indexes (``runner.links.sitemap``).

Every extractor returns ``Link`` records (``runner.links.model``) carrying the
source and 1-based line of each link. Nothing here touches the network.
"""

from __future__ import annotations

from .html import extract_html, html_ids
from .markdown import extract_markdown
from .model import Link, LinkKind
from .sitemap import SitemapError, extract_sitemap

__all__ = [
    "Link",
    "LinkKind",
    "SitemapError",
    "extract_html",
    "extract_markdown",
    "extract_sitemap",
    "html_ids",
]
