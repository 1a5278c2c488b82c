"""Running a search: objectives, executors, the SQLite run store and the run loop."""
