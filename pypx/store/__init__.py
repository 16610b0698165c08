"""The BASEMOUNT: layout, atomic writes, locks, database records and service configs."""
