"""Experiments: the live run writer and its points file, the journal that folds runs into
the catalog, the catalog side of runs (queries, tags), the filter language, the built-in
trainers, sweeps and reruns."""
