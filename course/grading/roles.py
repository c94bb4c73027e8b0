"""The scheduler's gate: each peer may do what its certificate's role is for.

    dask scheduler --preload course.grading.roles --tls-ca-file ca.pem \\
        --tls-cert scheduler.pem --tls-key scheduler-key.pem ...

Mutual TLS (``course.grading.certificates``) already keeps out every peer whose certificate
the course's CA did not sign. Among the CA's own certificates, this preload tells the roles
apart, since Dask itself would let any of them do anything: a grader's certificate could join
as a worker (and be sent students' notebooks and seeds), a worker's could connect as a client
(and run code on every worker). Each request a peer sends the scheduler names an operation;
the role read from the certificate the peer proved (its subject's organizational unit,
``certificates.role_of``) must allow it:

* ``worker`` (a worker and its nanny): only what a worker and a nanny send a scheduler
  (``WORKER_OPS``: register, heartbeat, declare its resources, unregister, log an event);
* ``grader``: everything a client does, but never joining as a worker (``WORKER_ONLY``);
* anything else (the scheduler's own certificate, a CA certificate without a course role): no
  request at all.

A refused request is logged on the scheduler (``refused ... from ...``) and its connection is
closed unanswered. The worker's and the client's streams of messages begin with a registration
(``register-worker``, ``register-client``), so they are gated with it; the one generic way to
open a stream (``connection_stream``, which workers use only between themselves) is refused.

The grader asks the scheduler ``tinytorch_roles`` when it connects (``cluster.connect``): a
scheduler started without this preload does not answer it, and the grader refuses to use it.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from typing import Any

from course.grading.certificates import role_of

logger = logging.getLogger("distributed.scheduler")

#: What a worker and its nanny send the scheduler (distributed 2026.8: every call of
#: ``Worker`` and ``Nanny`` to ``self.scheduler``, and their registration), and handshakes.
WORKER_OPS = frozenset({"register-worker", "register_nanny", "heartbeat_worker", "unregister",
                        "retire_workers", "set_resources", "who_has", "log_event", "identity",
                        "echo", "tinytorch_roles"})
#: What only a worker may do: a grader never joins the cluster as one.
WORKER_ONLY = frozenset({"register-worker", "register_nanny", "heartbeat_worker"})
#: The operation the grader asks to learn that this gate is in place, and what it answers.
QUESTION = "tinytorch_roles"
VERSION = 1


def allowed(role: str | None, op: str) -> bool:
    """Whether a peer proving ``role`` may send the scheduler operation ``op``."""
    if role == "worker":
        return op in WORKER_OPS
    if role == "grader":
        return op not in WORKER_ONLY
    return False


def _peer_role(comm: Any) -> str | None:
    try:
        return role_of(comm.extra_info.get("peercert"))
    except Exception:  # noqa: BLE001 - a comm without a certificate has no role
        return None


def _takes_comm(handler: Callable[..., Any]) -> bool:
    parameters = inspect.signature(handler).parameters
    return bool(parameters) and next(iter(parameters)) == "comm"


def gated(op: str, handler: Callable[..., Any]) -> Callable[..., Any]:
    """``handler`` behind the role check for ``op``. The gate is called with the connection
    (Dask passes it to a handler whose first parameter is ``comm``) and keeps the handler's
    ``serializers`` keyword, which Dask passes only to handlers that name it."""
    takes_comm = _takes_comm(handler)

    async def gate(comm: Any, **message: Any) -> Any:
        from distributed.core import Status

        role = _peer_role(comm)
        if not allowed(role, op):
            logger.warning("tinytorch: refused %r from %s (certificate role: %s)", op,
                           comm.peer_address, role or "none of the course's")
            comm.abort()
            return Status.dont_reply
        result = handler(comm, **message) if takes_comm else handler(**message)
        if inspect.isawaitable(result):
            result = await result
        return result

    parameters = [inspect.Parameter("comm", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    if "serializers" in inspect.signature(handler).parameters:
        parameters.append(inspect.Parameter("serializers", inspect.Parameter.KEYWORD_ONLY,
                                            default=None))
    parameters.append(inspect.Parameter("message", inspect.Parameter.VAR_KEYWORD))
    gate.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    gate.__name__ = f"gated_{getattr(handler, '__name__', op)}"
    return gate


def _answer(comm: Any) -> dict[str, Any]:
    """What the grader asks: that the gate is here, and the role it saw the asker prove."""
    return {"gate": "tinytorch roles", "version": VERSION, "you": _peer_role(comm)}


def dask_setup(scheduler: Any) -> None:
    """Dask's preload hook: put every operation of ``scheduler`` behind the role check. It runs
    before the scheduler dispatches its first request (a connection's requests wait until the
    scheduler has started, preloads included)."""
    for op, handler in list(scheduler.handlers.items()):
        scheduler.handlers[op] = gated(op, handler)
    scheduler.handlers[QUESTION] = gated(QUESTION, _answer)
    logger.info("tinytorch: every request is checked against its peer's certificate role")
