"""Image: the Glance v2 API, filesystem stores, format inspection and the node image cache."""
