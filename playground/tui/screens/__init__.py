"""The app's screens and modals, one workflow each."""
