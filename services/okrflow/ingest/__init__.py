"""The stream processor: decode -> dedupe -> aggregate -> one transaction per batch -> commit."""
