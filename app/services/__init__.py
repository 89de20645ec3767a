"""The one place that reads and writes the index and the archive.

Web views, the DICOM node, the HL7 listener, rq jobs and the CLI all call
these services; each takes the tenant (and the acting party, for audit)
explicitly and knows nothing of Flask's request.
"""
