"""The Supabase edge functions (TypeScript), shipped as package data: see driftloop.edge."""
