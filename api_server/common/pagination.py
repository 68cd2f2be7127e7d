"""Page parameters shared by list endpoints (Label Studio's `page` / `page_size`)."""

from __future__ import annotations

from typing import Annotated, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel

T = TypeVar("T")

MAX_PAGE_SIZE = 10_000
# The offset of the last page must fit the database's 64-bit integers.
MAX_PAGE = (2**63 - 1) // MAX_PAGE_SIZE


class PageParams(BaseModel):
    page: int = 1
    page_size: int = 100

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.page_size


async def page_params(
    page: Annotated[int, Query(ge=1, le=MAX_PAGE, description="1-based page number")] = 1,
    page_size: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="items per page")] = 100,
) -> PageParams:
    return PageParams(page=page, page_size=page_size)


class Page(BaseModel, Generic[T]):
    count: int
    next: str | None = None
    previous: str | None = None
    results: list[T]
