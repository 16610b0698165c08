"""Pure DICOM logic: the query model and its validation, result shapes (pypx JSON, DICOM JSON), templates."""
