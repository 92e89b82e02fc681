"""The compute service: an OpenStack Nova v2.1 compatible API."""
