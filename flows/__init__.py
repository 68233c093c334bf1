"""Prefect flows: thin entry points composing the backoffice, ocr and validators packages."""
