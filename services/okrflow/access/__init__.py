"""Who may read what: API tokens and the checks the intake and the pages share."""
