"""Dataset versions: reading files in (ingest), chunking and patching (segments), the
versions themselves (datasets), their profiles, checks and diffs, and ``sources``, which
turns "a version or a file" into one table for drift and scoring."""
