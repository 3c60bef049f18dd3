"""Evidence content is kept in the content-addressed store of core (`trustdesk.core.blobs`);
the incidents app's callers keep importing it under this name."""

from trustdesk.core.blobs import (  # noqa: F401
    CHUNK,
    EVIDENCE_DIR,
    Blob,
    BlobError,
    absolute_path,
    content_bytes,
    digest_text,
    digest_url,
    discard,
    human_size,
    max_bytes,
    open_blob,
    relative_path,
    root,
    safe_name,
    store_upload,
)
