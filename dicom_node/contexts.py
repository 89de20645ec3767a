"""Presentation contexts: what the node accepts, and what it proposes when sending.

PS3.8 §9.3.2.2: for each proposed context the acceptor picks one transfer
syntax out of those proposed. pynetdicom picks the first of *our* list that
the requestor offers, so the order below is a preference: uncompressed
first (never ask a modality to compress, never force a lossy step), then
lossless compression, then lossy and video syntaxes, which are stored as
received.
"""
from __future__ import annotations

from collections.abc import Iterable

from pydicom import uid
from pynetdicom import AllStoragePresentationContexts, build_context
from pynetdicom.presentation import PresentationContext
from pynetdicom.sop_class import (
    PatientRootQueryRetrieveInformationModelFind,
    PatientRootQueryRetrieveInformationModelGet,
    PatientRootQueryRetrieveInformationModelMove,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
    Verification,
)

UNCOMPRESSED = (
    uid.ExplicitVRLittleEndian,
    uid.ImplicitVRLittleEndian,
    uid.DeflatedExplicitVRLittleEndian,
    uid.ExplicitVRBigEndian,
)
LOSSLESS = (
    uid.JPEGLosslessSV1,  # JPEG lossless, process 14, first-order prediction
    uid.JPEGLossless,  # JPEG lossless, process 14
    uid.JPEGLSLossless,
    uid.JPEG2000Lossless,
    uid.HTJ2KLossless,
    uid.HTJ2KLosslessRPCL,
    uid.RLELossless,
)
LOSSY = (
    uid.JPEGBaseline8Bit,
    uid.JPEGExtended12Bit,
    uid.JPEGLSNearLossless,
    uid.JPEG2000,
    uid.HTJ2K,
    uid.MPEG2MPML,
    uid.MPEG2MPHL,
    uid.MPEG4HP41,
    uid.MPEG4HP41BD,
    uid.HEVCMP51,
)
STORAGE_TRANSFER_SYNTAXES = [*UNCOMPRESSED, *LOSSLESS, *LOSSY]
#: What a C-MOVE destination or C-GET requestor surely reads (PS3.5 §10.1:
#: Implicit VR Little Endian is the default every AE supports).
LITTLE_ENDIAN = [uid.ExplicitVRLittleEndian, uid.ImplicitVRLittleEndian]

QUERY_RETRIEVE = {
    "find": (PatientRootQueryRetrieveInformationModelFind,
             StudyRootQueryRetrieveInformationModelFind),
    "move": (PatientRootQueryRetrieveInformationModelMove,
             StudyRootQueryRetrieveInformationModelMove),
    "get": (PatientRootQueryRetrieveInformationModelGet,
            StudyRootQueryRetrieveInformationModelGet),
}
#: PS3.8 §9.3.2.2: a requestor proposes at most 128 presentation contexts
#: (context IDs are odd numbers 1–255).
MAX_PROPOSED = 128


def accepted() -> list[PresentationContext]:
    """Every context the node supports as an association acceptor.

    Storage contexts accept either role in SCP/SCU Role Selection Negotiation
    (PS3.7 §D.3.3.4), so a C-GET requestor can act as the Storage SCP for the
    instances we send back on its own association.
    """
    contexts = [build_context(Verification, LITTLE_ENDIAN)]
    for cx in AllStoragePresentationContexts:
        storage = build_context(cx.abstract_syntax, STORAGE_TRANSFER_SYNTAXES)
        storage.scu_role, storage.scp_role = True, True
        contexts.append(storage)
    for sop_classes in QUERY_RETRIEVE.values():
        contexts.extend(build_context(sop_class, [*LITTLE_ENDIAN, uid.ExplicitVRBigEndian])
                        for sop_class in sop_classes)
    return contexts


def for_sending(stored: Iterable[tuple[str, str]]) -> list[PresentationContext]:
    """Contexts to propose to a C-MOVE destination for ``(sop_class, transfer_syntax)`` pairs.

    Each SOP class gets one little-endian context, into which anything can be
    converted, plus one context per other stored transfer syntax so that
    compressed instances can go unchanged when the peer accepts them. With
    nothing to send (a refused identifier) Verification is proposed, since an
    association needs at least one context.
    """
    pairs = sorted(set(stored))
    if not pairs:
        return [build_context(Verification, LITTLE_ENDIAN)]
    classes = sorted({sop_class for sop_class, _ in pairs})
    contexts = [build_context(sop_class, LITTLE_ENDIAN) for sop_class in classes]
    for sop_class, syntax in pairs:
        if syntax not in LITTLE_ENDIAN and len(contexts) < MAX_PROPOSED:
            contexts.append(build_context(sop_class, [syntax]))
    return contexts[:MAX_PROPOSED]
