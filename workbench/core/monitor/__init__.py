"""Monitoring: a model's logged predictions watched window by window (drift, estimated
and realised performance, traffic) and the alerts that act on them."""
