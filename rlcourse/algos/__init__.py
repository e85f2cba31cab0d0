"""Training backends: each does one algorithm's work and writes through :class:`rlcourse.contract.writer.RunWriter`."""
