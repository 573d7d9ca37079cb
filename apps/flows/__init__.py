"""Flows: what happens when, composed across the domain apps (docs/architecture.md).

A flow calls the services of several apps in one story (a customer's message opens a ticket and
starts routing); the apps below never call up to a flow. Edges (sockets, REST, admin, tasks)
call flows and selectors.
"""
