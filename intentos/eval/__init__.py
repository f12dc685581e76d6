"""The eval harness: suites of intents judged by executing the model's workflow in a fresh sandbox.

    suite (cases, fixtures, checks) → runner (models × cases × reps, recorded) → judge → scores → report
"""
