"""`make soak`: the Firehose emulator drives a real receiver process for a bounded time."""
