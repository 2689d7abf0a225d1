"""`cms scenario`: one scripted case played through the real case and change workflows, their
activities, the payments service and PostgreSQL, on Temporal's time-skipping test server.

- `cms.scenario.script`: the scenario file (input contract) read and checked, every error named
  by its path (`events[2].on`).
- `cms.scenario.hmrc`: the scenario's `hmrc` table as the HMRC adapter answers it.
- `cms.scenario.stack`: the servers and workers a scenario runs on, started once per process.
- `cms.scenario.player`: plays one scenario day by day on the case calendar.
- `cms.scenario.result`: the output contract, assembled from the case, payments and the timeline.
"""
