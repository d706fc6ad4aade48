"""Drift: the statistical tests (stattests), comparing two tables column by column and
storing the reports (analysis), and the standalone HTML report (html)."""
