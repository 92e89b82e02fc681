"""Nova's filter scheduler as pure logic: no database, no HTTP.

The caller builds one ``host_state.HostState`` per compute node (from the service,
node, aggregate, allocation and server rows) and a ``request_spec.RequestSpec`` for
the boot or move, then asks ``select.FilterScheduler.select`` for hosts. The
scheduler consumes the chosen hosts' resources in memory, so several servers in one
request spread as Nova spreads them; the caller records the same claims in the
transaction that picked the hosts.

Modules: ``host_state`` (what a node has), ``request_spec`` (what a server needs),
``filters`` with ``json_query`` and ``spec_ops`` (which hosts may take it),
``weighers`` (which of those is best), ``loader`` (filters and weighers by name,
dotted path or entry point) and ``select`` (the two drivers, ``filter`` and
``chance``, and ``NoValidHost``).
"""
