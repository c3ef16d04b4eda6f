"""Who may use this server: the Host/Origin policy, browser sessions, sign-in limits."""
