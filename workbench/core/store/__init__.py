"""The store: the DuckDB catalog, the content-addressed object store, the hash-chained
audit log, ``verify``, reference parsing and read-only SQL. Everything else in core
stands on this room; it imports nothing from the others."""
