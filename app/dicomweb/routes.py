"""DICOMweb routes."""
from flask import Blueprint

bp = Blueprint("dicomweb", __name__, url_prefix="/dicom-web")
