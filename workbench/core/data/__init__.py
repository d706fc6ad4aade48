"""Dataset versions: reading files in (ingest), chunking and patching (segments),
writing a new version's rows (writing), the versions themselves (datasets), their
profiles, checks and diffs, and ``sources``, which turns "a version or a file" into one
table for drift and scoring."""
