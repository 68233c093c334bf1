"""The shared vocabulary every layer speaks: document types, fields and their personal-data
kinds, check results, pure maskers, GB 11643 identity numbers and amounts in capitals.

This package imports nothing of ours (an import-linter contract keeps it so): ``ocr``,
``validators``, ``backoffice``, ``flows`` and the CLI all build on it.
"""
