"""Device connectors: shared HTTP machinery, the Hubitat and Home Assistant (Roborock) connectors, fakes."""
