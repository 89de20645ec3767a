"""The DICOM node: C-ECHO, C-STORE, C-FIND, C-MOVE and C-GET over DIMSE (PS3.4, PS3.7).

``server`` builds the pynetdicom AE and binds the handlers to the Flask app;
``handlers`` resolves the tenant from the called AE title and calls
``app.services``; ``identifiers`` reads and answers Query/Retrieve identifiers;
``outbound`` prepares instances for C-MOVE/C-GET sub-operations; ``contexts``
lists the presentation contexts; ``statuses`` names the DIMSE statuses;
``sockets`` sets the TCP options of every DIMSE connection.
This package holds no SQL: everything it knows comes from the services.
"""
