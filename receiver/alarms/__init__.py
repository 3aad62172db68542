"""Alarms: rules over the derived metrics, evaluated on complete minutes, notified once.

loader.py/rules.py/expression.py read alarm files; decide.py is the per-minute decision;
evaluator.py runs it against the store (AlarmEvent in receiver/model.py: the store's dedup record); channels.py
and notifier.py deliver; runtime.py ties them to the server. The read side is views/'s: receiver/views/alarms.py
serves /api/v1/alarms, receiver/views/prometheus.py exposes counters.py's counts; nothing here imports views/.
"""
