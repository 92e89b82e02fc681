"""Network agents: ports, DHCP, routers and metadata on one host."""
