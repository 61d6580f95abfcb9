"""What several workers share through Redis, each with a one-worker fallback in memory."""
