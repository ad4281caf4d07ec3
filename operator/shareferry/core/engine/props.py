"""What a destination object should carry: content headers, metadata, SMB info, times.

Pure decisions from the source object and the options: content type guessed from the file
extension (Python's table plus the system's mime.types) for uploads, source headers and metadata
carried for service-to-service copies, SMB info only when asked for and both sides have it, a
blob's access tier unless ``--s2s-preserve-access-tier=false``.
"""

from __future__ import annotations

import mimetypes

from shareferry.core.objects import ContentHeaders, SmbInfo, StoredObject, WriteProps, modified_time
from shareferry.core.options import TransferOptions

mimetypes.init()  # reads /etc/mime.types and friends where the system has them


def guess_content_type(path: str) -> str:
    guessed, _encoding = mimetypes.guess_type(path, strict=False)
    return guessed or "application/octet-stream"


def write_props(
    source: StoredObject,
    *,
    source_is_local: bool,
    smb_both_sides: bool,
    permission: str | None,
    options: TransferOptions,
) -> WriteProps:
    """Properties for the destination of ``source`` (already stat'ed when remote)."""
    if source_is_local:
        content = ContentHeaders(
            content_type=options.content_type
            or (guess_content_type(source.path) if options.guess_mime_type else "application/octet-stream")
        )
    else:
        content = source.content or ContentHeaders()
        if options.content_type:
            content = ContentHeaders(
                content_type=options.content_type,
                content_encoding=content.content_encoding,
                content_language=content.content_language,
                content_disposition=content.content_disposition,
                cache_control=content.cache_control,
            )
    smb: SmbInfo | None = None
    if smb_both_sides and source.smb is not None and (options.preserve_smb_info or permission):
        smb = SmbInfo(
            attributes=source.smb.attributes if options.preserve_smb_info else None,
            creation_time=source.smb.creation_time if options.preserve_smb_info else None,
            last_write_time=source.smb.last_write_time if options.preserve_smb_info else None,
            permission=permission,
        )
    metadata = {**source.metadata, **options.metadata}
    # A local destination takes the time a later sync compares (the SMB last-write time only
    # with --preserve-smb-info), so that sync finds the two sides equal, not the source newer.
    # Only a Blob source has a tier and only a Blob destination writes one: other pairs ignore it.
    tier = source.access_tier if options.s2s_preserve_access_tier else None
    return WriteProps(
        content=content,
        metadata=metadata,
        smb=smb,
        last_modified=modified_time(source, smb_times=options.preserve_smb_info),
        access_tier=tier,
    )
