"""A sandbox of the downstream systems: real HTTP services on 127.0.0.1, each with its own
database, seeded from the fixtures, with idempotency keys and fault injection.

- :mod:`backoffice.sandbox.core_app`: the core system (customers keyed by the 18-digit ID
  number, their accounts; it takes KYC records from approved ID cards).
- :mod:`backoffice.sandbox.claims_app`: the legacy claims system (policies, insured persons,
  some under the 15-digit number; it takes claims in its own field names).
- :mod:`backoffice.sandbox.runner`: start and stop them (``run_sandbox``).
"""
