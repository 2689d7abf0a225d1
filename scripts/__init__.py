"""Command-line helpers run from the checkout (not installed): code generation and the scale model."""
