"""Server settings: Nagle and delayed ACKs off on every DIMSE socket; association and PDU limits."""
from __future__ import annotations

import socket

from pydicom.dataset import Dataset
from pydicom.uid import generate_uid
from pynetdicom import AE, evt
from pynetdicom.sop_class import CTImageStorage, StudyRootQueryRetrieveInformationModelMove

from app.services import tenants
from app.services.audit import SYSTEM
from dicom_node import server
from dicom_node.sockets import QuickAckSocket
from tests.dicom_node.conftest import free_port
from tests.factory import ct_dataset


def _nodelay(assoc) -> int:
    sock = assoc.dul.socket.socket
    if hasattr(socket, "TCP_QUICKACK"):  # Linux: delayed ACKs are off too
        assert isinstance(sock, QuickAckSocket)
    return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)


def test_limits_come_from_the_config(dicom_node):
    ae = dicom_node.node.ae
    assert ae.maximum_associations == dicom_node.app.config["PACS_MAX_ASSOCIATIONS"] == 64
    assert ae.maximum_pdu_size == server.MAX_PDU >= 256 * 1024


def test_accepted_sockets_have_nagle_disabled(dicom_node):
    assoc = dicom_node.associate()
    acceptors = dicom_node.node.server.active_associations
    assert acceptors and all(_nodelay(a) for a in acceptors)
    assoc.release()


def test_move_sub_association_has_nagle_disabled(dicom_node):
    """The node's own outgoing association (C-MOVE to a pynetdicom Storage SCP)."""
    seen = []

    def on_store(event):
        requestors = [a for a in dicom_node.node.ae.active_associations if a.is_requestor]
        seen.extend(_nodelay(a) for a in requestors)
        return 0x0000

    scp_ae = AE(ae_title="PYSCP")
    scp_ae.add_supported_context(CTImageStorage)
    port = free_port()
    scp = scp_ae.start_server(("127.0.0.1", port), block=False,
                              evt_handlers=[(evt.EVT_C_STORE, on_store)])
    try:
        tenants.add_peer(dicom_node.a.tenant, "PYSCP", "127.0.0.1", port, "", SYSTEM)
        study = generate_uid()
        dicom_node.store([ct_dataset(study)])
        assoc = dicom_node.associate(contexts=[StudyRootQueryRetrieveInformationModelMove])
        query = Dataset()
        query.QueryRetrieveLevel, query.StudyInstanceUID = "STUDY", study
        final = list(assoc.send_c_move(query, "PYSCP",
                                       StudyRootQueryRetrieveInformationModelMove))[-1][0]
        assoc.release()
    finally:
        scp.shutdown()
    assert final.Status == 0x0000
    assert seen and all(seen)
