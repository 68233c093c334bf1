"""backoffice: on-premises automation of ID-card and claim-form re-keying."""

__version__ = "0.1.0"
