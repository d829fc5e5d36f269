"""The one page model of every paged result (simulate ops, trace kernels / ops / layers, kernel rows)."""

from __future__ import annotations

from pydantic import BaseModel


class Page(BaseModel):
    """Rows offset..offset+returned of total; call again with offset=next_offset for the next page."""

    total: int
    offset: int
    limit: int | None
    returned: int
    truncated: bool
    next_offset: int | None = None


def make_page(total: int, offset: int, limit: int | None) -> Page:
    """The page of `limit` rows (None: all) starting at `offset` out of `total`."""
    end = total if limit is None else min(total, offset + limit)
    truncated = end < total
    return Page(
        total=total,
        offset=offset,
        limit=limit,
        returned=max(0, end - offset),
        truncated=truncated,
        next_offset=end if truncated else None,
    )
