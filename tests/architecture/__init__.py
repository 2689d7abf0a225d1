"""Tests of the code's shape: import layers and cycles."""
