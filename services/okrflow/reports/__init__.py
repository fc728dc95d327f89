"""Views of progress for people and machines (`okrflow progress`)."""
