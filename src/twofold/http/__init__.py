"""HTTP plumbing every HTTP wire shares: routing, bodies, negotiation, caching, framing."""
