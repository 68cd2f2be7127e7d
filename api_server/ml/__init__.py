"""ML backends: the protocol client, and (with the API) registration, predictions and training."""
