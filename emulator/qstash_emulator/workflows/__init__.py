"""Upstash Workflow on the emulator: runs, their steps, waits and notifies (see runs.py)."""

from .model import Entry, Run, Waiter
from .runs import WorkflowRuns

__all__ = ["Entry", "Run", "Waiter", "WorkflowRuns"]
