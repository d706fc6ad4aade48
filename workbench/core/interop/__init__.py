"""Other tools' stores: MLflow's ``mlruns/`` folders and SQL databases, in and out."""
