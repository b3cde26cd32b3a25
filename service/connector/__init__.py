"""Partner connectors as operators see them: health, circuit breakers, pause, dashboard."""
