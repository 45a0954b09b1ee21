"""Routes of the dashboard: pages and their JSON API, one module per area."""
