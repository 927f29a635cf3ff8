"""fetchrun runner: the scheduler, the sinks and the ``fetchrun`` CLI."""
