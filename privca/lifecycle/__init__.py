"""Renewal and the plan of what to renew or rotate, by when."""
