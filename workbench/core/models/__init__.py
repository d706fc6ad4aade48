"""Models: the registry (versions, aliases, promotion, rollback), the gates a promotion
must pass, batch scoring with ``model@alias``, and model cards."""
