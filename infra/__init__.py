"""CDK infrastructure for the render service."""
