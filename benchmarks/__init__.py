"""Speed measurements, run by `make bench`; never part of the test suite."""
