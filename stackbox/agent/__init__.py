"""Agents: make a host match the desired state they fetch from the controller over the bus.

Agents never open the database and never import a service package (DESIGN §1).
"""
