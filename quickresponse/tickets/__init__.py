"""Community calls as tickets: routed to districts, claimed, resolved, escalated, measured."""
