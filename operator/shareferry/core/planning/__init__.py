"""Planning: decide what gets transferred where, as a stream, before any byte moves.

:mod:`~shareferry.core.planning.copy_plan` expands a source (a file, a directory, ``dir/*``, a
wildcard) into :class:`~shareferry.core.planning.copy_plan.Transfer` items the way ``azcopy
copy`` does, applying the filters and pruning excluded subtrees while it walks;
:mod:`~shareferry.core.planning.shard` splits that stream among workers. Nothing here reads or
writes object bytes, and nothing holds a whole tree in memory.
"""
