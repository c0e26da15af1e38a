"""The staff tray icon: built in a later issue."""
