"""HTTP layer: FastAPI app factory, routers, middleware, WebSockets. Thin by design."""
