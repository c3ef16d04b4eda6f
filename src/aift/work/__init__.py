"""The vocabulary of long work, shared by every layer: job records (`schemas`), how
running work reports and learns it must stop (`control`), and the port through which a
domain service queues its work (`queueing`). The machinery that runs jobs is `aift.jobs`."""
