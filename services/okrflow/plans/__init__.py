"""Objectives and key results as code: parsing `okrs.yaml`, applying it to the database."""
