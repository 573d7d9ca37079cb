"""The customer's side: the chat socket (`/ws/chat/`) and the conversation REST API, the HTTP
fallback of the widget. Edges over the flows (docs/architecture.md): they validate frames and
requests, call a flow or a selector, and serialise."""
