"""Reconcilers: compare desired children with actual ones, apply the difference, compute status."""
