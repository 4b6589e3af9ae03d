"""Run records and the run store."""

from knowledge.runs.record import Outcome, Provenance, RunRecord, RunStatus

__all__ = ["Outcome", "Provenance", "RunRecord", "RunStatus"]
