"""The promote stage and its gate: a challenger against the champion, moved by alias."""
