"""View request bodies and the response shape (Label Studio's `View`)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from api_server.db.models import View


class ViewCreate(BaseModel):
    # The data manager sends more than the SDK (filter_group, user, ...); what is not stored is ignored.
    model_config = ConfigDict(extra="ignore")

    project: int
    data: dict[str, Any] = Field(default_factory=dict, description="filters, ordering, hiddenColumns, title, ...")
    order: int | None = Field(default=None, ge=-(2**31), le=2**31 - 1)


class ViewUpdate(BaseModel):
    model_config = ConfigDict(extra="ignore")

    project: int | None = None
    data: dict[str, Any] | None = Field(default=None, description="replaces the stored data whole")
    order: int | None = Field(default=None, ge=-(2**31), le=2**31 - 1)


class ViewOrder(BaseModel):
    model_config = ConfigDict(extra="forbid")

    project: int
    ids: list[int] = Field(max_length=1000, description="the caller's views of the project, in tab order")


class ViewPublic(BaseModel):
    id: int
    project: int
    user: int | None
    data: dict[str, Any]
    order: int | None
    # Label Studio keeps these beside `data`; here they mirror data.ordering and data.selectedItems.
    ordering: Any = None
    selected_items: Any = None
    filter_group: None = None


def to_public(view: View) -> ViewPublic:
    data = view.data or {}
    return ViewPublic(
        id=view.id,
        project=view.project_id,
        user=view.user_id,
        data=data,
        order=view.order,
        ordering=data.get("ordering"),
        selected_items=data.get("selectedItems"),
    )
