"""Analysis of finished runs: tables and curves across seeds, comparison files, throughput measurements."""
