"""The CRD spec model: typed CopyJob / FileShare / SyncSchedule specs, names, conditions, status."""
