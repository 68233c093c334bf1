"""The store's revisions, oldest first (a package, so they install with it)."""
