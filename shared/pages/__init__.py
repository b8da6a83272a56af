"""Pages for people (contract §14): server-rendered HTML, readable without JavaScript, with no asset from another
origin, forms protected against cross-site requests, and never a secret rendered back.

- `render`: Jinja2 templates (escaping by default) and the headers every page carries (a strict CSP).
- `tokens`: signed, short-lived values: the setup session cookie and the forms' anti-forgery tokens.
"""
