"""The team checking its own work: overlap, agreement, adjudication, people and the work given to them."""
