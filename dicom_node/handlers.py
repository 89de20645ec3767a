"""pynetdicom event handlers: resolve the tenant, call the services, answer a status.

The tenant is the one whose AE title the peer called (PS3.8 §7.1.1, Called AE
Title). Each handler call opens its own app context and so its own
database session. Generators do all database work before their first
``yield``: pynetdicom resumes them between network round trips, and an app
context must not stay open across those.
"""
from __future__ import annotations

import logging
import threading
import traceback
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any
from weakref import WeakKeyDictionary

from flask import Flask
from pydicom.dataset import Dataset
from pynetdicom import evt
from pynetdicom.events import Event

from app.services import audit, ingest, query, retrieve, tenants
from app.services.audit import Actor
from app.services.errors import Conflict, Invalid
from dicom_node import contexts, identifiers, outbound, statuses
from dicom_node.identifiers import BadIdentifier, RetrieveRequest
from dicom_node.outbound import Outgoing, SubOperations
from dicom_node.part10 import FileMetaEncoder
from dicom_node.sockets import on_conn_open

if TYPE_CHECKING:
    from app.models import Tenant

log = logging.getLogger(__name__)
_NOUN = {"PATIENT": "patient", "STUDY": "study", "SERIES": "series", "IMAGE": "instance"}


def called_ae(event: Event) -> str:
    return str(event.assoc.requestor.primitive.called_ae_title).strip()


def actor(event: Event) -> Actor:
    requestor = event.assoc.requestor
    return Actor(requestor.ae_title.strip(), "dicom", requestor.address)


class Handlers:
    """The node's handlers, bound to one Flask app.

    The tenant is resolved once per association, when it is requested: the
    called AE title cannot change during an association (PS3.8 §7.1.1), and
    this saves a query per request. The cached row is detached from any
    session; services read only its columns.
    """

    def __init__(self, app: Flask) -> None:
        self.app = app
        self._tenants: WeakKeyDictionary[object, Tenant] = WeakKeyDictionary()
        self._lock = threading.Lock()
        self._file_meta = FileMetaEncoder()

    def tenant(self, event: Event) -> Tenant | None:
        """The association's tenant (call inside an app context)."""
        tenant = self._tenants.get(event.assoc)
        return tenant if tenant is not None else tenants.for_called_ae(called_ae(event))

    def bindings(self) -> list[tuple]:
        """``evt_handlers`` for :meth:`pynetdicom.AE.start_server`."""
        return [(evt.EVT_CONN_OPEN, on_conn_open), (evt.EVT_REQUESTED, self.on_requested),
                (evt.EVT_C_ECHO, self.on_echo), (evt.EVT_C_STORE, self.on_store),
                (evt.EVT_C_FIND, self.on_find), (evt.EVT_C_MOVE, self.on_move),
                (evt.EVT_C_GET, self.on_get)]

    # --- association ----------------------------------------------------------
    def on_requested(self, event: Event) -> None:
        """Reject an association whose called AE is no approved tenant's, or whose
        calling AE is not on that tenant's allow-list (PS3.8 §9.3.4 reasons 7 and 3)."""
        # The A-ASSOCIATE-RQ primitive: pynetdicom copies the titles only later.
        request = event.assoc.requestor.primitive
        called, calling = called_ae(event), str(request.calling_ae_title).strip()
        with self.app.app_context():
            tenant = tenants.for_called_ae(called)
            reason = None
            if tenant is None:
                reason = statuses.REASON_CALLED_AE_NOT_RECOGNISED
            elif not tenants.calling_ae_allowed(tenant, calling):
                reason = statuses.REASON_CALLING_AE_NOT_RECOGNISED
        if reason is None:
            with self._lock:
                self._tenants[event.assoc] = tenant
            return
        log.info("rejecting association %s -> %s from %s: reason %d", calling, called,
                 event.assoc.requestor.address, reason)
        # pynetdicom skips negotiation once EVT_REQUESTED has sent A-ASSOCIATE-RJ.
        event.assoc.acse.send_reject(statuses.REJECTED_PERMANENT, statuses.SOURCE_SERVICE_USER,
                                     reason)
        event.assoc.kill()

    def on_echo(self, event: Event) -> int:
        """C-ECHO (PS3.7 §9.1.5): the association was accepted, so we are reachable."""
        return statuses.SUCCESS

    # --- C-STORE --------------------------------------------------------------
    def on_store(self, event: Event) -> int | Dataset:
        """Ingest the instance as received; success only once it is durable (PS3.4 §B.2.3)."""
        sop_uid = str(event.request.AffectedSOPInstanceUID)
        with self.app.app_context():
            tenant = self.tenant(event)
            if tenant is None:
                return statuses.with_comment(statuses.NOT_AUTHORIZED, "institution not active")
            code = tenant.code
            try:
                ingest.ingest(tenant, self._file_meta.from_event(event), actor(event))
            except Invalid as exc:
                log.info("C-STORE %s for %s refused: %s", sop_uid, code, exc.message)
                return statuses.with_comment(statuses.STORE_CANNOT_UNDERSTAND, exc.message)
            except Conflict as exc:
                log.info("C-STORE %s for %s refused: %s", sop_uid, code, exc.message)
                return statuses.with_comment(statuses.PROCESSING_FAILURE, exc.message)
            except Exception as exc:
                _log_unexpected("C-STORE", sop_uid, code, exc)
                return statuses.with_comment(statuses.STORE_OUT_OF_RESOURCES,
                                             "archive unavailable, retry later")
        return statuses.SUCCESS

    # --- C-FIND ---------------------------------------------------------------
    def on_find(self, event: Event) -> Iterator[tuple[Any, Dataset | None]]:
        """C-FIND (PS3.4 §C.4.1): pending per match, cancellable between matches."""
        try:
            request = identifiers.parse_find(_identifier(event),
                                             str(event.request.AffectedSOPClassUID))
        except BadIdentifier as exc:
            yield exc.as_status(), None
            return
        responses, failure = self._find(event, request)
        if failure is not None:
            yield failure, None
            return
        pending = statuses.PENDING_WARNING if request.unsupported else statuses.PENDING
        for ds in responses:
            if event.is_cancelled:
                yield statuses.CANCEL, None
                return
            yield pending, ds

    def _find(self, event: Event, request: identifiers.FindRequest
              ) -> tuple[list[Dataset], Dataset | int | None]:
        called = called_ae(event)
        noun = _NOUN[request.level.value]
        with self.app.app_context():
            tenant = self.tenant(event)
            if tenant is None:
                return [], statuses.with_comment(statuses.NOT_AUTHORIZED, "institution not active")
            keys = ",".join(sorted(request.filters))
            try:
                matches = query.search(tenant, request.level, request.filters)
                responses = [identifiers.response(m, request, called) for m in matches]
            except Invalid as exc:
                audit.access(tenant, actor(event), f"{noun}.query", noun, outcome="failure",
                             detail=f"C-FIND keys {keys}: {exc.message}")
                return [], statuses.with_comment(statuses.UNABLE_TO_PROCESS, exc.message)
            except Exception as exc:
                _log_unexpected("C-FIND", request.level.value, tenant.code, exc)
                return [], statuses.FIND_OUT_OF_RESOURCES
            audit.access(tenant, actor(event), f"{noun}.query", noun,
                         _uid_filter(request), detail=f"C-FIND {len(responses)} matches; "
                         f"keys {keys}")
        return responses, None

    # --- C-MOVE / C-GET -------------------------------------------------------
    def on_move(self, event: Event) -> Iterator[Any]:
        """C-MOVE (PS3.4 §C.4.2): destination, number of sub-operations, then pendings."""
        destination = str(event.move_destination).strip()
        request, failure, items, peer = self._prepare_retrieve(event, destination)
        work = SubOperations(len(items))
        if peer is None:
            self._audit_retrieve(event, request, statuses.MOVE_DESTINATION_UNKNOWN, work,
                                 f"C-MOVE to unknown destination {destination}")
            yield None, None  # pynetdicom answers 0xA801 Move Destination unknown
            return
        handlers = [(evt.EVT_CONN_OPEN, on_conn_open), (evt.EVT_ESTABLISHED, work.on_established),
                    (evt.EVT_DIMSE_RECV, work.on_dimse_recv)]
        sending = contexts.for_sending((i.sop_class_uid, i.transfer_syntax_uid) for i in items)
        yield peer[0], peer[1], {"contexts": sending, "evt_handlers": handlers}
        yield from self._send(event, request, failure, items, work, f"C-MOVE to {destination}")

    def on_get(self, event: Event) -> Iterator[Any]:
        """C-GET (PS3.4 §C.4.3): sub-operations on the requestor's own association."""
        request, failure, items, _ = self._prepare_retrieve(event, None)
        work = SubOperations(len(items))
        work.accepted = outbound.accepted_syntaxes(event.assoc.accepted_contexts)
        event.assoc.bind(evt.EVT_DIMSE_RECV, work.on_dimse_recv)
        try:
            yield from self._send(event, request, failure, items, work, "C-GET")
        finally:
            event.assoc.unbind(evt.EVT_DIMSE_RECV, work.on_dimse_recv)

    def _prepare_retrieve(self, event: Event, destination: str | None):
        """Decode the identifier, look up the destination, select and snapshot instances."""
        failure: Dataset | int | None = None
        request: RetrieveRequest | None = None
        try:
            request = identifiers.parse_retrieve(_identifier(event),
                                                 str(event.request.AffectedSOPClassUID))
        except BadIdentifier as exc:
            failure = exc.as_status()
        with self.app.app_context():
            tenant = self.tenant(event)
            if tenant is None:
                return request, statuses.NOT_AUTHORIZED, [], None
            peer = None
            if destination is not None:
                found = tenants.move_destination(tenant, destination)
                peer = (found.host, found.port) if found else None
            items: list[Outgoing] = []
            if failure is None:
                try:
                    items = outbound.plan(outbound.select(tenant, request))
                except Invalid as exc:
                    failure = statuses.with_comment(statuses.UNABLE_TO_PROCESS, exc.message)
                except Exception as exc:
                    _log_unexpected("retrieve", request.object_uid, tenant.code, exc)
                    failure = statuses.RETRIEVE_OUT_OF_RESOURCES
        return request, failure, items, peer

    def _send(self, event: Event, request: RetrieveRequest | None, failure: Any,
              items: list[Outgoing], work: SubOperations, what: str) -> Iterator[Any]:
        try:
            if failure is not None:
                yield 1  # pynetdicom only sends a failure status after a count
                yield failure, None
                return
            yield len(items)
            for item in items:
                if event.is_cancelled:
                    work.cancelled = True
                    yield statuses.CANCEL, None
                    return
                work.attempted += 1
                yield statuses.PENDING, self._dataset(item, work)
        finally:
            self._audit_retrieve(event, request, failure, work, what)

    def _dataset(self, item: Outgoing, work: SubOperations) -> Dataset:
        try:
            return outbound.load(item, work.accepted.get(item.sop_class_uid, set()), self._read)
        except Exception as exc:
            _log_unexpected("read", item.sop_uid, "", exc)
            return outbound.placeholder(item)

    def _read(self, item: Outgoing) -> bytes:
        with self.app.app_context():
            return retrieve.read(item.instance)

    def _audit_retrieve(self, event: Event, request: RetrieveRequest | None, failure: Any,
                        work: SubOperations, what: str) -> None:
        action = f"{_NOUN[request.level.value]}.retrieve" if request else "retrieve"
        done = failure is None and not work.failed and (work.cancelled or not work.remaining)
        detail = f"{what}: " + ("refused" if failure is not None else work.summary())
        try:
            with self.app.app_context():
                tenant: Tenant | None = self.tenant(event)
                if tenant is not None:
                    audit.access(tenant, actor(event), action, action.split(".")[0],
                                 request.object_uid if request else "",
                                 "success" if done else "failure", detail)
        except Exception as exc:  # auditing must not break the association
            _log_unexpected("audit", request.object_uid if request else "", "", exc)


def _identifier(event: Event) -> Dataset:
    try:
        return event.identifier
    except Exception as exc:
        raise BadIdentifier(statuses.UNABLE_TO_PROCESS,
                            f"identifier cannot be decoded ({type(exc).__name__})") from exc


def _uid_filter(request: identifiers.FindRequest) -> str:
    for keyword in ("SOPInstanceUID", "SeriesInstanceUID", "StudyInstanceUID"):
        if keyword in request.filters:
            return request.filters[keyword]
    return ""


def _log_unexpected(operation: str, uid: str, tenant_code: str, exc: BaseException) -> None:
    """Log the error class and stack, never its message: messages may quote data values."""
    stack = "".join(traceback.format_tb(exc.__traceback__))
    log.error("%s %s (tenant %s) failed with %s\n%s", operation, uid, tenant_code or "-",
              type(exc).__name__, stack)
