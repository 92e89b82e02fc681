"""Networking: the Neutron v2.0 API with ML2 semantics, IPAM, and the agent hand-off."""
