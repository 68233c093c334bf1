"""Image I/O, preprocessing, the OCR engine, classification and field extraction.

Knows nothing of Prefect or the database: it turns bytes into typed readings.
"""
