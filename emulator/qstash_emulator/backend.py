"""The backend: the engine and every resource, built and wired in one place.

Handlers reach resources through it (`backend(request).queues`), the `Emulator` owns one, and
nothing else creates a resource. Every extension point is wired here once, in a fixed order:

- gates (hold a message back before an attempt): queues, then flow control — queue order
  decides first, and flow control only counts a message once its queue lets it run;
- delivery interceptors (answer an attempt without the network): injected faults, then the
  LLM gateway for provider hosts (so a fault can be injected on those too);
- destination resolvers (claim a destination before URLs and URL groups): the LLM gateway
  (`api/llm` and provider URLs);
- message hooks (follow messages without holding them): workflow runs — a publish check that
  refuses steps of runs that are over, created/failed hooks that keep each run's steps and
  state, a callback-body hook for the failure function's fields, a delivery listener.
"""

from __future__ import annotations

from collections.abc import Callable

from .controls.captures import CaptureStore
from .controls.faults import Faults
from .controls.limits import Limits
from .core.clock import Clock, VirtualClock, wall_time
from .core.delivery import Delivery
from .core.engine import Engine
from .core.ids import IdSource
from .core.retention import DEFAULT_WINDOW
from .core.scheduler import Scheduler
from .core.users import Users
from .llm.persist import install as persist_llm_jobs
from .llm.service import LLMService
from .resources.destinations import Destinations
from .resources.flow_control import FlowControl
from .resources.queues import Queues
from .resources.schedules import Schedules
from .resources.url_groups import UrlGroups
from .store import MemoryStore, Store
from .workflows import WorkflowRuns
from .workflows.persist import install as persist_workflows

__all__ = ["Backend"]


class Backend:
    """One emulator's state and machinery: clock, scheduler, engine and resources.

    Args:
        clock: the one clock every timestamp and timer reads.
        seed: seeds ids (and the LLM's default text), so a run is reproducible.
        quota: the plan tier of the built-in users (`payg` or `pro`).
        keep_deliveries: how many delivery records to keep (None: all).
        store: where state changes are journaled (default: nowhere, the memory store); a
            persistent store's saved state is loaded by `restore()`, on the running loop.
    """

    def __init__(
        self,
        clock: Clock,
        *,
        seed: int = 0,
        quota: str = "payg",
        keep_deliveries: int | None = None,
        store: Store | None = None,
        finished_retention: float = DEFAULT_WINDOW,
    ) -> None:
        self.clock = clock
        self.store: Store = store if store is not None else MemoryStore()
        self.users = Users(quota)
        self.ids = IdSource(seed)
        self.scheduler = Scheduler(clock)
        self.delivery = Delivery()
        self.engine = Engine(
            clock=clock,
            scheduler=self.scheduler,
            users=self.users,
            ids=self.ids,
            delivery=self.delivery,
            wall=wall_time,  # follows freezegun, as the app's Receiver does
            keep_deliveries=keep_deliveries,
            store=self.store,
            finished_retention=finished_retention,
        )
        self.queues = Queues(self.engine)
        self.flow_control = FlowControl(self.engine)
        self.url_groups = UrlGroups(self.engine)
        self.destinations = Destinations(self.engine, self.queues, self.url_groups)
        self.schedules = Schedules(self.engine, self.destinations)
        self.captures = CaptureStore(clock)
        self.limits = Limits(clock)
        self.faults = Faults()
        self.llm = LLMService(self.engine, self.limits)
        self.workflows = WorkflowRuns(self.engine)
        persist_workflows(self.workflows, self.store)  # runs and waiters: kinds of their own
        persist_llm_jobs(self.llm.queue, self.store)  # the /queue mirror's jobs

        self.engine.gates = [self.queues, self.flow_control]
        self.delivery.interceptors = [self.faults.intercept, self.llm.gateway.intercept]
        self.destinations.resolvers = [self.llm.gateway.resolve]
        engine = self.engine
        engine.publish_checks.append(self.workflows.check_publish)
        engine.created_hooks.append(self.workflows.message_created)
        engine.failed_hooks.append(self.workflows.message_failed)
        engine.callback_body_hooks.append(self.workflows.callback_body)
        engine.delivery_listeners.append(self.workflows.delivered)
        self.reset_hooks: list[Callable[[], None]] = []

    def reset(self, seed: int | None = None) -> None:
        """Forget all state: messages, timers, resources, captures, limits, faults, rewrites.

        Users and their tokens stay; signing keys go back to their first values, ids restart
        from `seed` (default: the current seed) and a virtual clock returns to its start.
        Work that is running must be cancelled first (`scheduler.cancel_running`).
        A persistent store forgets its saved state too.
        """
        self.store.clear()
        self.scheduler.clear()
        self.scheduler.errors.clear()
        self.engine.reset()
        self.queues.reset()
        self.flow_control.reset()
        self.url_groups.reset()
        self.schedules.reset()
        self.captures.reset()
        self.limits.reset()
        self.faults.clear()
        self.delivery.rewrites.clear()
        self.ids.reset(seed)
        self.llm.reset()  # after the ids: the LLM's ids follow the seed
        self.workflows.reset()
        self.users.reset_keys()
        if isinstance(self.clock, VirtualClock):
            self.clock.reset()
        for hook in self.reset_hooks:
            hook()

    def restore(self) -> int:
        """Load a persistent store's saved state and re-arm its timers.

        Runs on the running loop, before the server takes requests.

        Returns:
            How many unfinished messages were re-armed (0 for the memory store).
        """
        return self.store.restore(self)
