"""Per-entity writers the sink calls inside its transaction. Each takes the batch's events of its
kind and returns the ids of the events whose change was superseded by newer stored state (STALE).
"""
