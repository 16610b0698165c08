"""A local sandbox PACS: Orthanc on loopback, seeded with deterministic synthetic studies."""
