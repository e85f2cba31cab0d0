"""Chapter labs: what the reader builds from scratch, checked against the library versions. Imported by notebooks
and tests only, never by the rest of :mod:`rlcourse`."""
