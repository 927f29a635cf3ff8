"""The hostile-peer suite: one test per security.md section 3 check (issue #7)."""
