"""Access control: write keys for sources, bearer tokens with roles."""

from troth.access.keys import ROLES, Credential, hash_secret, new_token, new_write_key

__all__ = ["ROLES", "Credential", "hash_secret", "new_token", "new_write_key"]
