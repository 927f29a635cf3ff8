"""Crawling and link checking (issue #5): the state store, URL scope, robots.txt, the crawl loop."""
