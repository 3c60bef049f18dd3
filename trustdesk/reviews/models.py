"""Models of this app (see DESIGN.md section 4)."""
