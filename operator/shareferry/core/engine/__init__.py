"""The transfer engine: schedules transfers with bounded concurrency and memory, copies each
file in chunks (streamed through this process, or server-side), retries, caps bandwidth."""
