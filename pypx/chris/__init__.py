"""ChRIS: object storage (Swift or a folder) behind one protocol, and the CUBE registration client."""
