"""The command-line clients: guardctl for staff, guard-admin for IT."""
