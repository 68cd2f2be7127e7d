"""Project membership: who may do what in a project (roles in api_server/users/roles.py)."""
