"""The message bus between the controller and agents: nudges, RPC, reports (DESIGN §1)."""
