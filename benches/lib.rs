//! Benchmarks of memstache: see the `[[bench]]` targets in this package.
