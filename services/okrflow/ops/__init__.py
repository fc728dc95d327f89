"""What every okrflow process shares to be operated: logs, build info, start-up waits, HTTP."""
