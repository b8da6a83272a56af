"""Development tools: never deployed (`.funcignore` leaves this folder out) and never imported by the app."""
