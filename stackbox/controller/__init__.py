"""The controller's loops: outbox relay, agents' reports and heartbeats, RPC answers,
scheduling sweeps. It may use the database, the service packages and the bus."""
