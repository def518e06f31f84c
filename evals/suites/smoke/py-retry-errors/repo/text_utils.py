"""Text helpers for the blog engine."""

import re


def slugify(title):
    """Turn a title into a URL slug: lower-case words joined by single hyphens."""
    words = re.findall(r"[A-Za-z0-9]+", title)
    return "-".join(words)
