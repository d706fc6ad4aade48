"""Remotes: a project's store pushed to and pulled from a folder or an S3 bucket."""
