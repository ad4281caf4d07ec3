"""Account-level operations: list shares, get/set service properties."""

from __future__ import annotations

from aiohttp import web

from shareferry.emulator import service_properties
from shareferry.emulator.context import Ctx, metadata_xml, reply, xml_reply
from shareferry.emulator.wire import ticks_to_rfc1123, xml_text


async def list_shares(ctx: Ctx) -> web.StreamResponse:
    prefix = ctx.query.get("prefix", "")
    marker = ctx.query.get("marker", "")
    include = {part.strip().lower() for part in ctx.query.get("include", "").split(",") if part}
    limit = ctx.max_results()
    shares = [
        s
        for s in ctx.store.list_shares(ctx.account, include_snapshots="snapshots" in include)
        if s.name.startswith(prefix)
    ]
    # Markers are XML text: a space (below every share-name character) separates name and snapshot,
    # and "~" sorts a live share after its snapshots.
    keys = [f"{s.name} {s.snapshot or '~'}" for s in shares]
    start = 0
    if marker:
        start = next((i for i, k in enumerate(keys) if k >= marker), len(keys))
    page = shares[start : start + limit]
    next_marker = keys[start + limit] if start + limit < len(keys) else ""
    items = []
    for share in page:
        snapshot = f"<Snapshot>{share.snapshot}</Snapshot>" if share.snapshot else ""
        metadata = f"<Metadata>{metadata_xml(share.metadata)}</Metadata>" if "metadata" in include else ""
        items.append(
            f"<Share><Name>{xml_text(share.name)}</Name>{snapshot}<Properties>"
            f"<Last-Modified>{ticks_to_rfc1123(share.last_modified)}</Last-Modified>"
            f"<Etag>{xml_text(share.etag)}</Etag><Quota>{share.quota_gib}</Quota>"
            f"<AccessTier>{share.access_tier}</AccessTier>"
            f"<AccessTierChangeTime>{ticks_to_rfc1123(share.access_tier_changed)}</AccessTierChangeTime>"
            f"<EnabledProtocols>SMB</EnabledProtocols>"
            f"</Properties>{metadata}</Share>"
        )
    document = (
        f'<EnumerationResults ServiceEndpoint="{xml_text(ctx.endpoint())}/">'
        f"<Prefix>{xml_text(prefix)}</Prefix><Marker>{xml_text(marker)}</Marker>"
        f"<MaxResults>{limit}</MaxResults><Shares>{''.join(items)}</Shares>"
        f"<NextMarker>{xml_text(next_marker)}</NextMarker></EnumerationResults>"
    )
    return xml_reply(document)


async def get_service_properties(ctx: Ctx) -> web.StreamResponse:
    return xml_reply(service_properties.document(ctx.store.account(ctx.account).service_properties))


async def set_service_properties(ctx: Ctx) -> web.StreamResponse:
    update = service_properties.parse(await ctx.body())
    state = ctx.store.account(ctx.account)
    state.service_properties = service_properties.merged(state.service_properties, update)
    return reply(202)
