"""C-MOVE and C-GET over DICOM TLS with pynetdicom (DCMTK 3.6.7's movescu/getscu have no TLS)."""
