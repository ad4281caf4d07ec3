"""The worker: runs one CopyJob shard through the transfer core and reports back (status, MD5s)."""
