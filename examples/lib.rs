//! Examples of memstache: see the `[[example]]` targets in this package.
