//! Integration tests of memstache live in `tests/tests/`.
