"""The EHR side: everything that plays the EHR (a CDS client and its FHIR server) against the
service, for the command line, the tests and the benchmarks.

An in-memory FHIR server (``memory_fhir``), Bundles loaded as a server stores them (``bundles``),
prefetch filled from the discovery templates (``prefetch_fill``), hook requests and the CDS
client that builds them from a chart (``hook_request``), the services as discovery lists them
(``services``), the scenario patients and seeding them into a FHIR server (``scenarios``,
``seeding``), test credentials (``keys``), calling the service (``service_client``) and the
``ketamine-cds`` command line (``cli``, ``commands/``, ``output``).

It may import ``service``, ``hooks`` and ``fhir_mappers``; nothing there imports it
(tests/test_guards.py).
"""
