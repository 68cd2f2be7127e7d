"""The labeling workflow: task state machine with history, next-task queue and locks, reviews."""
