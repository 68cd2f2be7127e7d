"""Sign-in with passwords: session cookies beside API tokens, with CSRF protection.

The contract the web app builds on:

- `POST /api/auth/login` with `{"username": ..., "password": ...}` (JSON, or a form) answers
  `200 {"user": {...}, "csrf_token": "...", "expires_at": "..."}` and sets the cookie
  `kubelabel_session` (HttpOnly, SameSite=Lax, Path=/, Secure over TLS, Max-Age
  KUBELABEL_SESSION_HOURS). A wrong username or password is `401` (one message for both);
  too many failures for the username or the client address are `429` with `Retry-After`.
- Every `/api` call then works with the cookie instead of `Authorization: Token ...`. A
  cookie-authenticated POST, PUT, PATCH or DELETE also needs the header `X-CSRFToken: <csrf_token>`,
  else `403`. GET, HEAD and OPTIONS need no CSRF token, and token-authenticated calls never do.
- `GET /api/auth/session` answers the same body as login for the signed-in user (the page calls it
  on load to learn who is signed in and the CSRF token), `401` when nobody is.
- `POST /api/auth/logout` (with `X-CSRFToken`) deletes the session on the server and clears the
  cookie: `204`. A password change deletes all the user's sessions; a deactivated user's stop.

Modules: `passwords` (Argon2id), `sessions` (ids, cookie, CSRF token), `ratelimit` (attempt limits),
`repository`, `service`, `schemas`, `router`. The dependency that accepts either credential is
`api_server.deps.current_user`.
"""
