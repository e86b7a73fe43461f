"""Sources that turn what contact centres produce into ContactEvents."""
