"""The shared foundation every architecture stands on: keys, data lake, network and monitoring."""
