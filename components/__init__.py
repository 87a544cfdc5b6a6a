"""The Pulumi components of etl-platform: the shared foundation and the seven architectures."""
