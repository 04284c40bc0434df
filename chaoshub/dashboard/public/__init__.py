"""The dashboard service's public functions, one module per concern; service.py is their face."""
