"""The only code that speaks to Table Storage and Storage queues: `base` (clients, the one error mapping, the one
ETag loop), then one store per kind of thing: integrations, tracker, cursors, states cache, queues."""
