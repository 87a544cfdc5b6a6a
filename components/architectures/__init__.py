"""The seven architectures; each is one ComponentResource built from typed args and the foundation's refs."""
