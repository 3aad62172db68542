"""The deriver: derived values kept in step with the stored samples.

- ``deriver``: marks, passes and rollups: recomputes each changed minute and hour from the
  samples stored for it.
- ``worker``: where the deriver evaluates rules: a worker process, or a thread.
"""
