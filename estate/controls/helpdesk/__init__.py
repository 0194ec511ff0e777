"""Helpdesk controls (framework section 4): the shared platform and a queue per council."""
