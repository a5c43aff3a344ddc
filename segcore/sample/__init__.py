"""The sample lake: a generated retailer's customers, orders and events, and other lake shapes."""
