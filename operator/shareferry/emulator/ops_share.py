"""Share operations: create, properties, metadata, quota, snapshots, permissions, ACL, stats, lease."""

from __future__ import annotations

import json
import uuid
from xml.sax.saxutils import escape

from aiohttp import web

from shareferry.emulator.context import Ctx, metadata_headers, reply, xml_reply
from shareferry.emulator.errors import StorageError, bad_request
from shareferry.emulator.model import Share, SignedIdentifier
from shareferry.emulator.wire import now_ticks, ticks_to_rfc1123, xml_text
from shareferry.emulator.xmlbody import invalid_xml, parse_xml_body

_TIERS = {"transactionoptimized": "TransactionOptimized", "hot": "Hot", "cool": "Cool", "premium": "Premium"}


class _RefusedHeader(StorageError):
    """400 ``InvalidHeaderValue`` naming the header and its value in ``HeaderName`` and
    ``HeaderValue`` elements, as Azure's error document does (the SDK reads them into
    ``additional_info``, so a client can tell a refused quota from a refused tier)."""

    def __init__(self, name: str, value: str, message: str) -> None:
        super().__init__(400, "InvalidHeaderValue", message)
        self.header_name = name
        self.header_value = value

    def body(self) -> bytes:
        detail = f"<HeaderName>{escape(self.header_name)}</HeaderName><HeaderValue>{escape(self.header_value)}</HeaderValue>"
        return super().body().replace(b"</Error>", detail.encode() + b"</Error>")


def _share_headers(share: Share) -> dict[str, str]:
    return {"ETag": share.etag, "Last-Modified": ticks_to_rfc1123(share.last_modified)}


def _quota(ctx: Ctx) -> int | None:
    quota = ctx.int_header("x-ms-share-quota", minimum=1)
    if quota is not None and quota > 102400:
        raise _RefusedHeader("x-ms-share-quota", str(quota), "x-ms-share-quota must be 1 to 102400 GiB.")
    return quota


def _tier(ctx: Ctx) -> str | None:
    value = ctx.header("x-ms-access-tier")
    if value is None:
        return None
    tier = _TIERS.get(value.lower())
    if tier is None:
        raise _RefusedHeader("x-ms-access-tier", value, f"Unknown access tier {value!r}.")
    return tier


async def create_share(ctx: Ctx) -> web.StreamResponse:
    assert ctx.route.share is not None
    share = ctx.store.create_share(
        ctx.account,
        ctx.route.share,
        quota_gib=_quota(ctx) or 5120,
        metadata=ctx.metadata(),
        access_tier=_tier(ctx),
    )
    return reply(201, _share_headers(share))


async def get_share_properties(ctx: Ctx) -> web.StreamResponse:
    share = ctx.share()
    headers = {
        **_share_headers(share),
        **metadata_headers(share.metadata),
        "x-ms-share-quota": str(share.quota_gib),
        "x-ms-access-tier": share.access_tier,
        "x-ms-access-tier-change-time": ticks_to_rfc1123(share.access_tier_changed),
        "x-ms-enabled-protocols": "SMB",
    }
    if share.lease_id:
        headers.update(
            {"x-ms-lease-state": "leased", "x-ms-lease-status": "locked", "x-ms-lease-duration": "infinite"}
        )
    else:
        headers.update({"x-ms-lease-state": "available", "x-ms-lease-status": "unlocked"})
    return reply(200, headers)


async def delete_share(ctx: Ctx) -> web.StreamResponse:
    assert ctx.route.share is not None
    include = (ctx.header("x-ms-delete-snapshots") or "").lower() in ("include", "include-leased")
    ctx.store.delete_share(
        ctx.account,
        ctx.route.share,
        ctx.route.snapshot,
        include_snapshots=include,
        lease_id=ctx.header("x-ms-lease-id") or "",
    )
    return reply(202)


async def set_share_metadata(ctx: Ctx) -> web.StreamResponse:
    share = ctx.share()
    share.metadata = ctx.metadata()
    share.touch()
    ctx.store.save_share(ctx.account, share)
    return reply(200, _share_headers(share))


async def set_share_properties(ctx: Ctx) -> web.StreamResponse:
    share = ctx.share()
    quota = _quota(ctx)
    if quota is not None:
        if quota * 1024**3 < share.usage_bytes():
            raise _RefusedHeader(
                "x-ms-share-quota", str(quota), "The quota is smaller than the share's usage."
            )
        share.quota_gib = quota
    tier = _tier(ctx)
    if tier is not None and tier != share.access_tier:
        share.access_tier = tier
        share.access_tier_changed = now_ticks()
    share.touch()
    ctx.store.save_share(ctx.account, share)
    return reply(200, _share_headers(share))


async def snapshot_share(ctx: Ctx) -> web.StreamResponse:
    assert ctx.route.share is not None
    metadata = ctx.metadata() or None
    snap = ctx.store.snapshot_share(ctx.account, ctx.route.share, metadata)
    assert snap.snapshot is not None
    return reply(201, {**_share_headers(snap), "x-ms-snapshot": snap.snapshot})


async def create_permission(ctx: Ctx) -> web.StreamResponse:
    share = ctx.share()
    try:
        document = json.loads(await ctx.body())
        permission = document["permission"]
        fmt = str(document.get("format", "sddl")).lower()
    except (ValueError, KeyError, TypeError) as exc:
        raise bad_request("InvalidXmlDocument", 'The body must be JSON {"permission": "<SDDL>"}.') from exc
    if not isinstance(permission, str) or not permission:
        raise bad_request("InvalidHeaderValue", "The permission must be a non-empty string.")
    stored = permission if fmt == "sddl" else f"binary:{permission}"
    key = ctx.store.create_permission(ctx.account, share, stored)
    return reply(201, {"x-ms-file-permission-key": key})


async def get_permission(ctx: Ctx) -> web.StreamResponse:
    share = ctx.share()
    key = ctx.header("x-ms-file-permission-key")
    if key is None:
        raise bad_request("MissingRequiredHeader", "x-ms-file-permission-key is required.")
    stored = ctx.store.get_permission(share, key)
    if stored.startswith("binary:"):
        body = {"permission": stored[len("binary:") :], "format": "binary"}
    else:
        body = {"permission": stored}
        if ctx.header("x-ms-file-permission-format"):
            body["format"] = "sddl"
    return reply(200, body=json.dumps(body).encode(), content_type="application/json")


async def get_share_acl(ctx: Ctx) -> web.StreamResponse:
    share = ctx.share()
    items = []
    for ident in share.identifiers:
        policy = "".join(
            f"<{tag}>{xml_text(value)}</{tag}>"
            for tag, value in (
                ("Start", ident.start),
                ("Expiry", ident.expiry),
                ("Permission", ident.permission),
            )
            if value
        )
        items.append(
            f"<SignedIdentifier><Id>{xml_text(ident.id)}</Id><AccessPolicy>{policy}</AccessPolicy>"
            "</SignedIdentifier>"
        )
    return xml_reply(
        f"<SignedIdentifiers>{''.join(items)}</SignedIdentifiers>", headers=_share_headers(share)
    )


async def set_share_acl(ctx: Ctx) -> web.StreamResponse:
    share = ctx.share()
    body = await ctx.body()
    identifiers = _signed_identifiers(body) if body.strip() else []
    share.identifiers = identifiers
    share.touch()
    ctx.store.save_share(ctx.account, share)
    return reply(200, _share_headers(share))


def _signed_identifiers(body: bytes) -> list[SignedIdentifier]:
    """The stored access policies of a Set Share ACL body (at most 5, ids of 1-64 characters)."""
    root = parse_xml_body(body, "SignedIdentifiers")
    identifiers: list[SignedIdentifier] = []
    for item in root:
        if item.tag != "SignedIdentifier":
            raise invalid_xml(f"SignedIdentifiers has an unknown element {item.tag!r}")
        unknown = [child.tag for child in item if child.tag not in ("Id", "AccessPolicy")]
        policy = item.find("AccessPolicy")
        if policy is not None:
            unknown += [child.tag for child in policy if child.tag not in ("Start", "Expiry", "Permission")]
        if unknown:
            raise invalid_xml(f"SignedIdentifier has an unknown element {unknown[0]!r}")
        identifier = (item.findtext("Id") or "").strip()
        if not 1 <= len(identifier) <= 64:
            raise invalid_xml("each SignedIdentifier needs an Id of 1 to 64 characters")
        identifiers.append(
            SignedIdentifier(
                id=identifier,
                start=policy.findtext("Start") if policy is not None else None,
                expiry=policy.findtext("Expiry") if policy is not None else None,
                permission=policy.findtext("Permission") if policy is not None else None,
            )
        )
    if len(identifiers) > 5:
        raise invalid_xml("a share can have at most 5 stored access policies")
    return identifiers


async def get_share_stats(ctx: Ctx) -> web.StreamResponse:
    share = ctx.share()
    return xml_reply(
        f"<ShareStats><ShareUsageBytes>{share.usage_bytes()}</ShareUsageBytes></ShareStats>",
        headers=_share_headers(share),
    )


async def share_lease(ctx: Ctx) -> web.StreamResponse:
    share = ctx.share()
    response = _apply_share_lease(ctx, share)
    ctx.store.save_share(ctx.account, share)  # a lease survives a restart, as on Azure
    return response


def _apply_share_lease(ctx: Ctx, share: Share) -> web.Response:
    action = (ctx.header("x-ms-lease-action") or "").lower()
    lease_id = ctx.header("x-ms-lease-id")
    headers = _share_headers(share)
    if action == "acquire":
        if share.lease_id and share.lease_id != (ctx.header("x-ms-proposed-lease-id") or ""):
            raise StorageError(409, "LeaseAlreadyPresent", "There is already a lease present.")
        share.lease_id = ctx.header("x-ms-proposed-lease-id") or str(uuid.uuid4())
        return reply(201, {**headers, "x-ms-lease-id": share.lease_id})
    if action in ("release", "renew", "change"):
        if not share.lease_id or lease_id != share.lease_id:
            raise StorageError(409, "LeaseIdMismatchWithLeaseOperation", "The lease ID does not match.")
        if action == "release":
            share.lease_id = ""
            return reply(200, headers)
        if action == "change":
            share.lease_id = ctx.header("x-ms-proposed-lease-id") or share.lease_id
        return reply(200, {**headers, "x-ms-lease-id": share.lease_id})
    if action == "break":
        share.lease_id = ""
        return reply(202, {**headers, "x-ms-lease-time": "0"})
    raise StorageError(400, "InvalidHeaderValue", f"Unknown x-ms-lease-action {action!r}.")
