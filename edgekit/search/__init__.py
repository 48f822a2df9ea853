"""Search: find the best compression recipe for a budget with Optuna (spaces, strategies, storage, results)."""
