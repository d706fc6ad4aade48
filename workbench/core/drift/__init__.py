"""Drift: the statistical tests (stattests), and comparing two tables column by column
and storing the reports (analysis). How a report is drawn (tables, charts, HTML and
Markdown files) is presentation: ``workbench.app.drift_report``."""
