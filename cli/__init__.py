"""The `backoffice` command line: commands for operators and IT.

The top of the layout: the only importer of ``flows``. Entry point: :data:`cli.main.app`.
"""
